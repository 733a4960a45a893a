"""MAILSITE_RELAY_ROUTES parsing and lookup, and reading a route's login (relay/routes.py)."""

import pytest

from relay.routes import CredentialsUnreadable, Smarthost, parse_routes, read_credentials, route_for


def test_parse_entries_with_defaults() -> None:
    routes = parse_routes(
        "example.net=smtp.provider.example:587 starttls file:/run/secrets/login,"
        " .Example.ORG.=[10.0.0.5]:25 none,\n*=smarthost.example:465 tls env:LOGIN"
    )
    assert routes == {
        "example.net": Smarthost("smtp.provider.example", 587, "starttls", "file:/run/secrets/login"),
        ".example.org": Smarthost("10.0.0.5", 25, "none", ""),
        "*": Smarthost("smarthost.example", 465, "tls", "env:LOGIN"),
    }
    assert parse_routes("a.example=relay.example:2525")["a.example"].security == "starttls"
    assert parse_routes("") == {}
    assert routes["*"].key == "[smarthost.example]:465"


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("example.net", "DESTINATION=HOST:PORT"),
        ("example.net=relay.example", "HOST:PORT"),
        ("example.net=relay.example:0", "HOST:PORT"),
        ("example.net=relay.example:70000", "HOST:PORT"),
        ("example.net=relay.example:25 sometimes", "neither"),
        ("example.net=relay.example:25 none env:LOGIN", "never sent without TLS"),
        ("example.net=relay.example:25 tls file:", "neither"),
        ("=relay.example:25", "DESTINATION=HOST:PORT"),
    ],
)
def test_bad_entries_say_what_is_wrong(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_routes(text)


def test_lookup_order_domain_then_parents_then_default() -> None:
    routes = parse_routes("a.example=one:25, .example=two:25, *=three:25")
    assert route_for(routes, "A.Example.") == routes["a.example"]
    assert route_for(routes, "b.a.example") == routes[".example"]
    assert route_for(routes, "example") == routes["*"]
    assert route_for(parse_routes("a.example=one:25"), "b.example") is None


def test_credentials_from_a_file_or_the_environment(tmp_path) -> None:
    login = tmp_path / "login"
    login.write_text("user@example.net:pa:ss word\nignored\n")
    assert read_credentials(f"file:{login}") == ("user@example.net", "pa:ss word")
    assert read_credentials("env:LOGIN", {"LOGIN": "user:secret"}) == ("user", "secret")


@pytest.mark.parametrize("content", ["", "SECRET-without-a-colon\n", ":SECRET\n"])
def test_unreadable_credentials_never_show_the_secret(tmp_path, content: str) -> None:
    login = tmp_path / "login"
    login.write_text(content)
    with pytest.raises(CredentialsUnreadable) as raised:
        read_credentials(f"file:{login}")
    assert "SECRET" not in str(raised.value)
    with pytest.raises(CredentialsUnreadable, match="MISSING is not set"):
        read_credentials("env:MISSING", {})
    with pytest.raises(CredentialsUnreadable, match="No such file"):
        read_credentials(f"file:{tmp_path / 'absent'}")
