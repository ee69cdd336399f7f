#!/usr/bin/env python3
"""The man pages (docs/man/*.scd) say what the programs do: every long option a program's --help
prints is in its man page and every option the page names is in --help; every key the configuration
parser accepts (daemon/config.c) is in emotiond.conf(5), under its section, and the page names no
other. Prints each difference; exits 1 when there is one.

    check_man.py SOURCE_DIR EMOTIOND EMOTION [EMOTION_GTK]
"""
import os
import re
import subprocess
import sys

OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def run_help(*argv):
    env = dict(os.environ)
    env.pop("DISPLAY", None)  # emotion-gtk prints its help without opening a display
    out = subprocess.run(list(argv) + ["--help"], capture_output=True, text=True, env=env, timeout=30)
    if out.returncode != 0:
        sys.exit(f"{' '.join(argv)} --help: exit {out.returncode}: {out.stderr}")
    return out.stdout


def compare(what, help_text, page):
    with open(page, encoding="utf-8") as f:
        man = set(OPTION.findall(f.read()))
    helped = set(OPTION.findall(help_text))
    problems = [f"{what}: {o} is in --help but not in {os.path.basename(page)}" for o in sorted(helped - man)]
    problems += [f"{what}: {o} is in {os.path.basename(page)} but not in --help" for o in sorted(man - helped)]
    print(f"{what}: {len(helped)} options in --help, {len(man)} in {os.path.basename(page)}")
    return problems


def config_keys(config_c):
    """(section, key) of each entry of the parser's key table."""
    with open(config_c, encoding="utf-8") as f:
        text = f.read()
    keys = set(re.findall(r'\{\s*"(\w+)",\s*"(\w+)",\s*(?:STR|UINT|U64|DBL|BOOL)\b', text))
    if not keys:
        sys.exit(f"no key table found in {config_c}")
    return keys


def page_keys(page):
    """(section, key) of each key the page describes: the bold words that start a line under a
    '# [section]' heading."""
    keys, section = set(), None
    with open(page, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"# \[(\w+)\]", line)
            if m:
                section = m.group(1)
            elif line.startswith("# "):
                section = None
            elif section and line.startswith("*"):
                keys |= {(section, k) for k in re.findall(r"\*([a-z_]+)\*", line.split("(")[0])}
    return keys


def main():
    src, emotiond, emotion = sys.argv[1:4]
    gtk = sys.argv[4] if len(sys.argv) > 4 else None
    man = os.path.join(src, "docs", "man")
    problems = compare("emotiond", run_help(emotiond), os.path.join(man, "emotiond.8.scd"))
    problems += compare("emotiond-setup-detectors", run_help(os.path.join(src, "scripts", "setup-detectors.sh")),
                        os.path.join(man, "emotiond-setup-detectors.8.scd"))

    # emotion: its own options and those of every command, all in emotion(1).
    main_help = run_help(emotion)
    commands = re.findall(r"^  ([a-z]+) ", main_help.split("Commands:")[1].split("\n\n")[0], re.M)
    texts = [main_help] + [run_help(emotion, c) for c in commands if c != "help"]
    print(f"emotion: commands {', '.join(commands)}")
    problems += compare("emotion", "\n".join(texts), os.path.join(man, "emotion.1.scd"))
    if gtk:
        problems += compare("emotion-gtk", run_help(gtk), os.path.join(man, "emotion-gtk.1.scd"))

    parsed = config_keys(os.path.join(src, "daemon", "config.c"))
    documented = page_keys(os.path.join(man, "emotiond.conf.5.scd"))
    print(f"emotiond.conf: {len(parsed)} keys in the parser, {len(documented)} in emotiond.conf.5.scd")
    problems += [f"emotiond.conf: [{s}] {k} is accepted but not in emotiond.conf(5)" for s, k in sorted(parsed - documented)]
    problems += [f"emotiond.conf: [{s}] {k} is in emotiond.conf(5) but not accepted there" for s, k in sorted(documented - parsed)]

    for p in problems:
        print("FAIL: " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
