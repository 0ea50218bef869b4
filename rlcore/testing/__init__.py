"""What tests and plugin authors use: clusters for tests."""
