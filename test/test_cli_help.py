"""`gaussian-head COMMAND --help` tells a new user each option's default (cli.say_defaults)."""

import argparse

from gaussian_head_ros.cli import build_parser


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser, _ = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_option_with_a_default_shows_it_in_help():
    """Each option with a default (not a flag, not empty: '' and [] mean "not given" and their help says what then)
    shows it in its command's --help: render's --size, --distance and --background, track's One Euro settings and
    eval's --max-frames were listed without theirs (user28, s28)."""
    checked = 0
    for name, p in _commands().items():
        text = " ".join(p.format_help().split())
        for a in p._actions:
            if (not a.option_strings or a.default in (None, argparse.SUPPRESS, "") or a.help == argparse.SUPPRESS
                    or isinstance(a, (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._HelpAction))
                    or (isinstance(a.default, (list, tuple)) and not a.default)):
                continue
            helped = " ".join((a.help % {**vars(a), "prog": p.prog}).split())
            assert "default" in helped.lower(), f"gaussian-head {name} {a.option_strings[-1]}: no default in {helped!r}"
            assert helped in text
            checked += 1
    assert checked >= 30
    render = " ".join(_commands()["render"].format_help().split())
    assert "(default: 512)" in render and "(default: 0.0 0.0 0.0)" in render and "(default: 0.6)" in render


def test_help_keeps_the_defaults_options_state_themselves():
    """An option whose help already says its default (render --width: 'default: --size') gets no second one."""
    render = _commands()["render"]
    width = next(a for a in render._actions if "--width" in a.option_strings)
    assert width.help.lower().count("default") == 1 and "(default: --size); framed" in width.help
    text = render.format_help()
    assert "(default: None)" not in text and "(default: )" not in text
