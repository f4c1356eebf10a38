"""A small CPU trainer that SAM3's real train.py can launch, for the demo and the tests."""
