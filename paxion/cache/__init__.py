"""The on-disk feature cache: shard writer, reader, manifest, verification and batching."""
