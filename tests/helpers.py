"""Values the tests share."""

# A pseudonym secret as long as the bot requires (32 bytes or more); for tests only.
TEST_SECRET = "test-secret-test-secret-test-secret-0123"
