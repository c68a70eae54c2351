//! An in-process nitronode double for tests.
