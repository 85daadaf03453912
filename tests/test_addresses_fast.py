"""The fast path for plain addresses agrees with email-validator on everything it accepts."""

from __future__ import annotations

import json
import string
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from mailflow.importing.addresses import _plain_address

FIXTURES = Path(__file__).parent / "fixtures" / "email"


def slow(text: str):
    """What email-validator (with mailflow's policy) says, the fast path bypassed."""
    import mailflow.importing.addresses as addresses

    original = addresses._plain_address
    addresses._plain_address = lambda _: None
    try:
        return addresses._check.__wrapped__(text)
    finally:
        addresses._plain_address = original


atext = st.text(alphabet=string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-.", min_size=1,
                max_size=70)
label = st.text(alphabet=string.ascii_letters + string.digits + "-", min_size=1, max_size=66)
tld = st.sampled_from(["com", "FR", "org", "test", "invalid", "local", "onion", "arpa", "c0m",
                       "x", "museum", "xn--p1ai", "localhost", "example"])


@settings(max_examples=600, deadline=None)
@given(local=atext, labels=st.lists(label, min_size=0, max_size=3), top=tld)
def test_the_fast_path_never_disagrees_with_the_full_validator(local, labels, top):
    address = f"{local}@{'.'.join([*labels, top])}"
    fast = _plain_address(address)
    if fast is not None:
        expected = slow(address)
        assert expected.problem is None, (address, expected.problem)
        assert fast == expected.email


def test_the_fast_path_agrees_on_every_corpus_address():
    cases = [address for address, _ in json.loads((FIXTURES / "skeggse_isemail_tests.json")
                                                  .read_text(encoding="utf-8"))]
    cases += ["Zoe.Martin@Example.COM", "a@b.co", "x@sub.domain-name.fr", "tag+x@gmail.com",
              "a..b@x.org", ".a@x.org", "a@-x.org", "a@x-.org", "a@ab--c.org", "a@x.test"]
    accepted = 0
    for address in cases:
        fast = _plain_address(address)
        if fast is None:
            continue
        accepted += 1
        assert slow(address).email == fast, address
    assert accepted >= 10  # the fast path is really taken for ordinary addresses
    assert _plain_address("Zoe.Martin@Example.COM") == "Zoe.Martin@example.com"
    assert _plain_address("a@x.test") is None and slow("a@x.test").problem is not None
