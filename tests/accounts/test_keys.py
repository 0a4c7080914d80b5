"""The API key format (accounts.keys), pure: the public prefix and length, which strings
look like a key without a lookup, the stored SHA-256 digest and the prefix shown on the
dashboard."""

from accounts import keys


def test_generated_key_has_the_public_prefix_and_enough_randomness():
    key = keys.generate()
    assert key.startswith("nex-sk-")
    assert len(key) == len("nex-sk-") + 48
    assert keys.looks_like_key(key)
    assert keys.generate() != key


def test_malformed_candidates_are_recognised_without_a_lookup():
    key = keys.generate()
    assert not keys.looks_like_key("sk-" + key[7:])
    assert not keys.looks_like_key(key[:-1])
    assert not keys.looks_like_key(key[:-1] + "!")
    assert not keys.looks_like_key("")
    assert not keys.looks_like_key(key + "a")
    assert not keys.looks_like_key(key[:-1] + "\n")
    assert not keys.looks_like_key(key[:-1] + "é")  # letters and digits, ASCII only
    assert not keys.looks_like_key(key[:-1] + "٣")


def test_digest_is_sha256_hex_and_differs_per_key():
    key = keys.generate()
    stored = keys.digest(key)
    assert len(stored) == 64
    assert int(stored, 16) >= 0
    assert keys.digest(key) == stored
    assert keys.digest(keys.generate()) != stored


def test_display_prefix_reveals_only_a_few_secret_characters():
    key = keys.generate()
    assert keys.display_prefix(key) == key[:13]
    assert key[13:] not in keys.display_prefix(key)
