"""The official account's signature and safe-mode crypto, against WeChat's own test vectors
(WECHAT.md 11), and what must be refused."""

from __future__ import annotations

import pytest

from wxlogin.wechat.oa_crypto import BadMessage, MessageCrypto, aes_key, signature, signed

KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
ENCRYPTED = (
    "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8"
    "PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa"
    "+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8t"
    "COp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJv"
    "nhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE="
)


def test_the_url_check_signature_vector() -> None:
    assert signature("AAAAA", "1714037059", "486452656") == (
        "899cf89e464efb63f54ddac96b0a0a235f53aa78")
    assert signed("899cf89e464efb63f54ddac96b0a0a235f53aa78", "AAAAA", "1714037059", "486452656")
    assert not signed("899cf89e464efb63f54ddac96b0a0a235f53aa79", "AAAAA", "1714037059",
                      "486452656")
    assert not signed("", "AAAAA", "1714037059", "486452656")


def test_the_encrypt_vector() -> None:
    crypto = MessageCrypto("wxb11529c136998cb6", KEY)
    assert crypto.encrypt("我是中文abcd123", random=b"aaaabbbbccccdddd") == (
        "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg==")


def test_the_decrypt_vector_and_its_msg_signature() -> None:
    assert signed("5d197aaffba7e9b25a30732f161a50dee96bd5fa", "spamtest", "1409735669",
                  "1320562132", ENCRYPTED)
    xml = MessageCrypto("wx2c2769f8efd9abc2", KEY).decrypt(ENCRYPTED)
    assert "<ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>" in xml
    assert "<Content><![CDATA[abcdteT]]></Content>" in xml and "6054768590064713728" in xml


def test_another_appid_or_key_is_refused_and_the_previous_key_still_opens() -> None:
    with pytest.raises(BadMessage):
        MessageCrypto("wx-someone-else", KEY).decrypt(ENCRYPTED)
    other = "B" * 43
    with pytest.raises(BadMessage):
        MessageCrypto("wx2c2769f8efd9abc2", other).decrypt(ENCRYPTED)
    rotated = MessageCrypto("wx2c2769f8efd9abc2", other, previous=KEY)
    assert "abcdteT" in rotated.decrypt(ENCRYPTED)
    assert "hello" in rotated.decrypt(rotated.encrypt("<xml>hello</xml>"))  # replies: new key


@pytest.mark.parametrize("garbage", ["", "not base64!", "QUJD", ENCRYPTED[:-8] + "AAAAAAA=",
                                     "A" * 64])
def test_garbage_is_a_bad_message_never_a_crash(garbage: str) -> None:
    with pytest.raises(BadMessage):
        MessageCrypto("wx2c2769f8efd9abc2", KEY).decrypt(garbage)


@pytest.mark.parametrize("key", ["short", "a" * 44, "!" * 43])
def test_a_malformed_encoding_aes_key_is_refused(key: str) -> None:
    with pytest.raises(ValueError):
        aes_key(key)
