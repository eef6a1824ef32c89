"""What a model learned: per-item predictions, per-class results, paired tests, the HTML report, human baseline."""
