"""The version a test changes to roll out a new release."""

VERSION = "1"
