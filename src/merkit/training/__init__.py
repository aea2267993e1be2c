"""Training: the plain-PyTorch engine, leave-one-subject-out folds and the fold runner (sequential or Ray)."""
