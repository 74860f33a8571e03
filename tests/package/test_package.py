#!/usr/bin/python3
"""The Debian package, built and checked end to end.

CPack makes the package from an already built tree (no rebuild); then this script checks the
control fields (dependencies computed by dpkg-shlibdeps), the file list, lintian (no errors),
the desktop entry, the AppStream metadata, the MIME definitions (by asking xdg-mime about sample
files against a private copy of the MIME and desktop databases), the man pages and the bash
completion; it extracts the package into a temporary root and runs the programs from there,
checks that they find the compute module relative to themselves, and does the same for a
`cmake --install` into an arbitrary prefix. Ends with `N passed, M failed`; exit 1 on failure.
"""

import argparse
import gzip
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

EXAMPLE = "usr/share/checkpoint-studio/examples/simple_nn_checkpoint.pth"
PYTORCH_TYPE = "application/x-pytorch-checkpoint"
SAFETENSORS_TYPE = "application/x-safetensors"
DESKTOP_ID = "checkpoint-studio.desktop"
# The pickle that opens a legacy torch.save stream: protocol 2, then torch's magic number.
LEGACY_HEADER = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19."


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"PASS {name}")
        else:
            self.failed += 1
            print(f"FAIL {name}" + (f": {detail}" if detail else ""))
        return ok


def run(cmd, timeout=120, env=None, cwd=None):
    """Runs a command; returns (exit status, stdout, stderr). Never raises for a failing command."""
    try:
        p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, errors="replace",
                           timeout=timeout, env=env, cwd=cwd)
        return p.returncode, p.stdout, p.stderr
    except FileNotFoundError as e:
        return 127, "", str(e)
    except subprocess.TimeoutExpired:
        return 124, "", f"timed out after {timeout} s"


def indent(text, limit=60):
    lines = text.rstrip().splitlines()
    if len(lines) > limit:
        lines = lines[:limit] + [f"... ({len(lines) - limit} more lines)"]
    return "\n".join("    " + line for line in lines)


def is_elf(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def dynamic_section(path):
    _, out, _ = run(["readelf", "-d", path])
    return out


def control_fields(deb):
    _, out, _ = run(["dpkg-deb", "--field", deb])
    fields, key = {}, None
    for line in out.splitlines():
        if line.startswith((" ", "\t")) and key:
            fields[key] += "\n" + line
        elif ":" in line:
            key, value = line.split(":", 1)
            fields[key] = value.strip()
    return fields


def dependency_names(field):
    return [re.split(r"[\s(]", alt.strip(), maxsplit=1)[0]
            for part in field.split(",") if part.strip() for alt in part.split("|")]


def check_runs_from(r, label, prefix, probe, version, example):
    """The programs under `prefix` (an extracted package or an install prefix) run from there."""
    ckpt = prefix / "bin" / "ckpt"
    env = {k: v for k, v in os.environ.items() if k != "CKPT_COMPUTE_MODULE"}

    rc, out, err = run([ckpt, "--version"], env=env)
    r.check(f"{label}: ckpt --version", rc == 0 and out.strip() == f"ckpt {version}",
            f"exit {rc}, stdout {out.strip()!r}, stderr {err.strip()!r}")

    rc, out, err = run([ckpt, "info", example], env=env)
    r.check(f"{label}: ckpt info on the bundled example", rc == 0 and "fc1.weight" in out
            and "training_checkpoint" in out, f"exit {rc}\n{indent(out + err)}")

    rc, out, err = run([ckpt, "info", "--json", example], env=env)
    try:
        doc = json.loads(out)
        ok = rc == 0 and doc.get("format") == "zip" and len(doc["state_dict"]["tensors"]) == 4
        detail = f"exit {rc}, format {doc.get('format')!r}"
    except (ValueError, KeyError, TypeError) as e:
        ok, detail = False, f"exit {rc}, not the expected JSON ({e}): {out[:200]!r} {err[:200]!r}"
    r.check(f"{label}: ckpt info --json on the bundled example", ok, detail)

    rc, out, err = run([ckpt, "scan", example], env=env)
    r.check(f"{label}: ckpt scan on the bundled example exits 0", rc == 0, f"exit {rc}\n{indent(out + err)}")

    # The compute module is found relative to the program: the probe sits beside the programs
    # and loads it as they do, with CKPT_COMPUTE_MODULE unset.
    module = prefix / "lib" / "checkpoint-studio" / "libckpt_compute.so"
    placed = prefix / "bin" / "ckpt_module_probe"
    shutil.copy2(probe, placed)
    try:
        rc, out, err = run([placed], env=env, timeout=120)
    finally:
        placed.unlink()
    m = re.search(r"^module (.+)$", out, re.M)
    loaded = Path(m.group(1)) if m else None
    r.check(f"{label}: a program in bin/ loads lib/checkpoint-studio/libckpt_compute.so",
            rc == 0 and loaded is not None and loaded.resolve() == module.resolve(),
            f"exit {rc}, loaded {loaded}, expected {module}\n{indent(out + err)}")


def check_elf_files(r, label, root, build_dir, stripped):
    elves = [p for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink() and is_elf(p)]
    r.check(f"{label}: has ELF files", len(elves) >= 2, f"found {[str(p) for p in elves]}")
    build_tokens = {str(build_dir), str(build_dir.resolve())}
    for p in elves:
        rel = p.relative_to(root)
        dyn = dynamic_section(p)
        paths = re.findall(r"\((?:RPATH|RUNPATH)\)\s+Library (?:rpath|runpath): \[(.*)\]", dyn)
        bad = [x for x in paths if any(t in x for t in build_tokens) or not x.startswith("$ORIGIN")]
        r.check(f"{label}: {rel} has no RPATH/RUNPATH outside $ORIGIN", not bad, f"{paths}")
        if stripped:  # unstripped files name the build tree in their debug information
            data = p.read_bytes()
            hits = [t for t in build_tokens if t.encode() in data]
            r.check(f"{label}: {rel} names no build-tree path", not hits, f"contains {hits}")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build-dir", required=True, type=Path)
    ap.add_argument("--cpack", default="cpack")
    ap.add_argument("--cmake", default="cmake")
    ap.add_argument("--probe", required=True, type=Path)
    ap.add_argument("--version", required=True)
    ap.add_argument("--gui", dest="gui", action="store_true", default=True)
    ap.add_argument("--no-gui", dest="gui", action="store_false")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()

    r = Results()
    started = time.monotonic()
    build_dir = args.build_dir.resolve()
    tmp = Path(tempfile.mkdtemp(prefix="ckpt-package-test-"))
    try:
        test(r, args, build_dir, tmp)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"({time.monotonic() - started:.0f} s)")
    print(f"{r.passed} passed, {r.failed} failed")
    return 1 if r.failed else 0


def test(r, args, build_dir, tmp):
    gui = args.gui
    tools = ["dpkg-deb", "dpkg", "lintian", "readelf", "man", "bash"]
    if gui:
        tools += ["desktop-file-validate", "update-desktop-database", "appstreamcli", "update-mime-database",
                  "xdg-mime", "mimetype"]
    missing = [t for t in tools if shutil.which(t) is None]
    if not r.check("tools installed", not missing, f"missing {missing}: run scripts/install-deps.sh"):
        return
    if not r.check("compute module probe built", args.probe.is_file(), f"{args.probe} is missing"):
        return

    # --- Build the package --------------------------------------------------------------------
    t0 = time.monotonic()
    rc, out, err = run([args.cpack, "--config", build_dir / "CPackConfig.cmake", "-G", "DEB", "-B", tmp / "cpack"],
                       timeout=240)
    debs = sorted((tmp / "cpack").glob("*.deb"))
    if not r.check(f"cpack -G DEB ({time.monotonic() - t0:.0f} s)", rc == 0 and len(debs) == 1,
                   f"exit {rc}, packages {debs}\n{indent(out + err)}"):
        return
    deb = debs[0]
    _, arch, _ = run(["dpkg", "--print-architecture"])
    arch = arch.strip()
    print(f"package: {deb.name} ({deb.stat().st_size / 1e6:.1f} MB)")
    r.check("package file name", deb.name == f"checkpoint-studio_{args.version}-1_{arch}.deb", deb.name)

    # --- Control fields -----------------------------------------------------------------------
    f = control_fields(deb)
    print(f"Depends: {f.get('Depends', '')}")
    print(f"Recommends: {f.get('Recommends', '')}")
    r.check("Package: checkpoint-studio", f.get("Package") == "checkpoint-studio", f.get("Package"))
    r.check("Version", f.get("Version") == f"{args.version}-1", f.get("Version"))
    r.check("Architecture", f.get("Architecture") == arch, f.get("Architecture"))
    r.check("Maintainer is 'Name <address>'", re.fullmatch(r"[^<>]+ <[^@<>\s]+@[^@<>\s]+>", f.get("Maintainer", "")),
            f.get("Maintainer"))
    r.check("Section and Priority", f.get("Section") == "science" and f.get("Priority") == "optional",
            f"{f.get('Section')} / {f.get('Priority')}")
    description = f.get("Description", "")
    r.check("Description has a synopsis and a long description",
            len(description.splitlines()) > 2 and 0 < len(description.splitlines()[0]) <= 80, description)
    depends = f.get("Depends", "")
    names = dependency_names(depends)
    expected = ["libc6", "libstdc++6", "libgcc-s1", "zlib1g"]
    if gui:
        expected += ["libqt6core6", "libqt6gui6", "libqt6widgets6"]
    r.check("Depends names the shared libraries' packages", all(n in names for n in expected),
            f"missing {[n for n in expected if n not in names]} in {depends}")
    r.check("Depends names Debian's LibTorch runtime (computed from libckpt_compute.so)",
            any(re.fullmatch(r"libtorch\d[\d.]*", n) for n in names), depends)
    r.check("Depends carries versions from the shlibs/symbols files",
            re.search(r"libc6 \(>= [^)]+\)", depends) and re.search(r"libtorch[\d.]+ \(>= [^)]+\)", depends), depends)
    r.check("Depends has no -dev packages", not [n for n in names if n.endswith("-dev")], depends)
    if gui:
        r.check("Recommends the Qt platform plugins", "qt6-qpa-plugins" in dependency_names(f.get("Recommends", "")),
                f.get("Recommends"))

    # --- File list ----------------------------------------------------------------------------
    _, listing, _ = run(["dpkg-deb", "--contents", deb])
    entries = {}
    for line in listing.splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6:
            path = parts[5].split(" -> ")[0]
            entries[path.rstrip("/")] = (parts[0], parts[1])
    expected_files = [
        "./usr/bin/ckpt",
        "./usr/lib/checkpoint-studio/libckpt_compute.so",
        "./" + EXAMPLE,
        "./usr/share/man/man1/ckpt.1.gz",
        "./usr/share/bash-completion/completions/ckpt",
        "./usr/share/doc/checkpoint-studio/copyright",
        "./usr/share/doc/checkpoint-studio/changelog.Debian.gz",
    ]
    if gui:
        expected_files += [
            "./usr/bin/checkpoint-studio",
            "./usr/share/man/man1/checkpoint-studio.1.gz",
            f"./usr/share/applications/{DESKTOP_ID}",
            "./usr/share/icons/hicolor/scalable/apps/checkpoint-studio.svg",
            "./usr/share/icons/hicolor/scalable/mimetypes/application-x-pytorch-checkpoint.svg",
            "./usr/share/icons/hicolor/scalable/mimetypes/application-x-safetensors.svg",
            "./usr/share/mime/packages/checkpoint-studio.xml",
        ]
    missing = [p for p in expected_files if p not in entries]
    r.check("package holds the programs, module, examples and desktop files", not missing, f"missing {missing}")
    if gui:
        metainfo = [p for p in entries if re.fullmatch(r"\./usr/share/metainfo/[^/]+\.metainfo\.xml", p)]
        r.check("package holds one AppStream metainfo file", len(metainfo) == 1, f"{metainfo}")
    outside = [p for p in entries if p not in (".", "./usr") and not p.startswith("./usr/")]
    r.check("everything is under /usr", not outside, f"{outside}")
    local = [p for p in entries if p.startswith("./usr/local")]
    r.check("nothing under /usr/local", not local, f"{local}")
    stray = [p for p in entries if re.search(r"/(tst_[^/]*|ckpt_module_probe)$|\.(a|h|hpp|cmake)$", p)]
    r.check("no tests, probes, headers or static libraries", not stray, f"{stray}")
    owners = {owner for _, owner in entries.values()}
    r.check("files owned by root/root", owners == {"root/root"}, f"{owners}")
    writable = [p for p, (mode, _) in entries.items() if mode[5] == "w" or mode[8] == "w"]
    r.check("nothing group- or world-writable", not writable, f"{writable}")
    module_mode = entries.get("./usr/lib/checkpoint-studio/libckpt_compute.so", ("?",))[0]
    r.check("compute module is not executable (Debian policy for shared objects)", module_mode == "-rw-r--r--",
            module_mode)

    # --- Extract and run ----------------------------------------------------------------------
    root = tmp / "root"
    rc, out, err = run(["dpkg-deb", "-x", deb, root])
    if not r.check("dpkg-deb -x", rc == 0, err):
        return
    usr = root / "usr"
    example = root / EXAMPLE
    check_elf_files(r, "package", root, build_dir, stripped=True)
    for p in [usr / "bin" / "ckpt", usr / "lib" / "checkpoint-studio" / "libckpt_compute.so"] + (
            [usr / "bin" / "checkpoint-studio"] if gui else []):
        _, sections, _ = run(["readelf", "-S", "-W", p])
        r.check(f"package: {p.relative_to(root)} is stripped",
                ".debug_info" not in sections and ".symtab" not in sections)
    check_runs_from(r, "package", usr, args.probe, args.version, example)
    check_every_needed_library_is_a_dependency(r, depends, [usr / "bin" / "ckpt",
                                                            usr / "lib" / "checkpoint-studio" / "libckpt_compute.so"]
                                               + ([usr / "bin" / "checkpoint-studio"] if gui else []))
    if gui:
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
        rc, out, err = run([usr / "bin" / "checkpoint-studio", "--version"], env=env, timeout=60)
        r.check("package: checkpoint-studio --version", rc == 0 and args.version in out,
                f"exit {rc}\n{indent(out + err)}")

    # --- Documentation ------------------------------------------------------------------------
    _, help_text, _ = run([usr / "bin" / "ckpt", "--help"])
    m = re.search(r"^Subcommands:\n((?:\s+.*\n?)*)", help_text, re.M)
    subcommands = re.findall(r"^\s+(\S+)", m.group(1), re.M) if m else []
    r.check("ckpt --help lists subcommands", bool(subcommands), help_text)
    manpages = ["ckpt"] + (["checkpoint-studio"] if gui else [])
    for page in manpages:
        path = usr / "share" / "man" / "man1" / f"{page}.1.gz"
        env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
        rc, text, err = run(["man", "--warnings", "-l", path], env=env)
        text = re.sub(r".\x08", "", text)  # overstrike bold and underline
        r.check(f"man page {page}(1) formats without warnings", rc == 0 and not err.strip() and "NAME" in text,
                f"exit {rc}\n{indent(err)}")
        if page == "ckpt":
            undocumented = [s for s in subcommands if not re.search(rf"\bckpt\s+{re.escape(s)}\b", text)]
            r.check("ckpt(1) documents every subcommand of ckpt --help", not undocumented, f"{undocumented}")
        with gzip.open(path, "rb") as fh:
            fh.read()
        r.check(f"{page}.1.gz has no name or time stamp in its gzip header (gzip -n)",
                path.read_bytes()[3] & 0x08 == 0 and path.read_bytes()[4:8] == b"\0\0\0\0")

    completion = usr / "share" / "bash-completion" / "completions" / "ckpt"
    script = (f'source "{completion}"\n'
              't() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=(); _ckpt; '
              'echo "${COMPREPLY[*]}"; }\n'
              't ckpt ""\nt ckpt info --\nt ckpt scan --\n')
    rc, out, err = run(["bash", "--norc", "--noprofile", "-c", script])
    lines = out.splitlines() + ["", "", ""]
    r.check("bash completion offers every subcommand", rc == 0 and set(lines[0].split()) == set(subcommands),
            f"exit {rc}, offered {lines[0]!r}, subcommands {subcommands}, {err.strip()}")
    r.check("bash completion offers --json after a subcommand",
            "--json" in lines[1].split() and "--json" in lines[2].split(), f"{lines[:3]} {err.strip()}")
    # Every option each subcommand's --help lists is completed and in that subcommand's synopsis
    # in the man page, so that a new option cannot be left out of either.
    with gzip.open(usr / "share" / "man" / "man1" / "ckpt.1.gz", "rt") as fh:
        roff = fh.read()
    synopsis = roff[roff.index(".SH SYNOPSIS"):roff.index(".SH DESCRIPTION")]
    for sub in subcommands:
        _, sub_help, _ = run([usr / "bin" / "ckpt", sub, "--help"])
        options = sorted(set(re.findall(r"^\s+(?:-\w,)?(--[\w-]+)", sub_help, re.M)) - {"--help"})
        rc, out, err = run(["bash", "--norc", "--noprofile", "-c", script.split("\nt ckpt")[0] + f"\nt ckpt {sub} --\n"])
        offered = set(out.split())
        missing = [o for o in options if o not in offered]
        r.check(f"bash completion offers every option of ckpt {sub} --help", options and not missing,
                f"missing {missing}; offered {sorted(offered)}")
        m = re.search(rf"^\.B ckpt {re.escape(sub)}\n(.*?)(?=^\.br$|\Z)", synopsis, re.M | re.S)
        block = m.group(1) if m else ""
        # An option is named by any of its spellings ("-o,--output": the synopsis shows -o).
        spellings = {long: [short, long] if short else [long]
                     for short, long in re.findall(r"^\s+(-\w)?,?(--[\w-]+)", sub_help, re.M)}

        def named(o):
            return any(re.search(rf"(?<![\w\\-]){re.escape(x.replace('-', chr(92) + '-'))}(?![\w\\])", block)
                       for x in spellings.get(o, [o]))
        unnamed = [o for o in options if not named(o)]
        r.check(f"ckpt(1)'s synopsis of ckpt {sub} names every option its --help lists", m and not unnamed,
                f"{unnamed}")

    # --- Desktop integration ------------------------------------------------------------------
    if gui:
        desktop = usr / "share" / "applications" / DESKTOP_ID
        rc, out, err = run(["desktop-file-validate", desktop])
        print("desktop-file-validate:\n" + indent(out + err or "(no output)"))
        r.check("desktop-file-validate", rc == 0 and "error:" not in out + err, f"exit {rc}")

        metainfo_file = next((usr / "share" / "metainfo").glob("*.metainfo.xml"))
        component_id = metainfo_file.name[: -len(".metainfo.xml")]
        text = metainfo_file.read_text()
        r.check("metainfo <id> matches its file name", f"<id>{component_id}</id>" in text, component_id)
        r.check("metainfo launches the desktop file",
                f'<launchable type="desktop-id">{DESKTOP_ID}</launchable>' in text)
        shots = re.findall(r"<image>(.*?)</image>", text)
        r.check("metainfo screenshots point at docs/screenshots in the repository",
                shots and all(s.startswith("https://") and "/docs/screenshots/" in s for s in shots), f"{shots}")
        source_dir = Path(__file__).resolve().parents[2]
        missing_shots = [s for s in shots if not (source_dir / s[s.index("docs/screenshots/"):]).is_file()]
        r.check("every screenshot named exists in the source tree", not missing_shots, f"{missing_shots}")
        rc, out, err = run(["appstreamcli", "validate", "--no-net", metainfo_file])
        print("appstreamcli validate --no-net:\n" + indent(out + err))
        r.check("appstreamcli validate --no-net", rc == 0, f"exit {rc}")
        rc, out, err = run(["appstreamcli", "validate-tree", "--no-net", root])
        print("appstreamcli validate-tree --no-net:\n" + indent(out + err))
        r.check("appstreamcli validate-tree --no-net (metainfo with its desktop file and icon)", rc == 0,
                f"exit {rc}")

        check_mime(r, root, tmp)

    # --- lintian ------------------------------------------------------------------------------
    t0 = time.monotonic()
    rc, out, err = run(["lintian", "--tag-display-limit", "0", "--display-info", "--show-overrides", deb],
                       timeout=240)
    tags = [line for line in out.splitlines() if re.match(r"^[EWIPXO]: ", line)]
    errors = [line for line in tags if line.startswith("E: ")]
    warnings = [line for line in tags if line.startswith("W: ")]
    print(f"lintian ({time.monotonic() - t0:.0f} s): {len(errors)} errors, {len(warnings)} warnings, "
          f"{len(tags) - len(errors) - len(warnings)} other tags")
    print(indent(out + err or "(no output)"))
    r.check("lintian: no errors", rc != 124 and not errors and "E: " not in err, f"exit {rc}")
    # What lintian may still warn about, and why it stays (installer/README.md):
    # initial-upload-closes-no-bugs (no Debian ITP bug: the package is not uploaded to Debian) and
    # maintscript-calls-ldconfig (CPack adds it for any library under /usr/lib; it cannot be
    # turned off, and it is harmless).

    # --- cmake --install into an arbitrary prefix ---------------------------------------------
    prefix = tmp / "any where" / "prefix"
    rc, out, err = run([args.cmake, "--install", build_dir, "--prefix", prefix], timeout=120)
    if r.check("cmake --install --prefix <somewhere else>", rc == 0, f"exit {rc}\n{indent(out + err)}"):
        check_elf_files(r, "install prefix", prefix, build_dir, stripped=False)
        check_runs_from(r, "install prefix", prefix, args.probe, args.version,
                        prefix / "share" / "checkpoint-studio" / "examples" / "simple_nn_checkpoint.pth")


def check_every_needed_library_is_a_dependency(r, depends, elf_files):
    """Each shared library an ELF file of the package needs (readelf's NEEDED) belongs to a Debian
    package that Depends names: a library added to the link (stb, libjpeg, Qt Charts) without the
    package saying so would install and then fail to start."""
    names = set(dependency_names(depends))
    _, cache, _ = run(["ldconfig", "-p"])
    paths = {}
    for line in cache.splitlines():
        m = re.match(r"\s*(\S+) \([^)]*\) => (\S+)", line)
        if m:
            paths.setdefault(m.group(1), m.group(2))  # one architecture's copy: the package name is the same
    missing = []
    for elf in elf_files:
        for lib in re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic_section(elf)):
            if lib not in paths:
                continue  # a library of the package itself, or one ldconfig does not know: dpkg-shlibdeps' job
            rc, owner, _ = run(["dpkg", "-S", os.path.realpath(paths[lib])])
            if rc != 0:
                rc, owner, _ = run(["dpkg", "-S", paths[lib]])
            package = owner.split(":", 1)[0].strip() if rc == 0 else "?"
            if package not in names:
                missing.append(f"{elf.name} needs {lib} from {package}")
    r.check("Depends names the package of every library the programs need", not missing, "; ".join(missing))


def check_mime(r, root, tmp):
    """The MIME definitions and the desktop file's MimeType, as xdg-mime sees them once installed.

    Uses a private XDG data folder holding the package's MIME package and desktop file, so
    nothing on the machine changes and nothing installed there interferes (user settings too).
    """
    share = tmp / "xdg" / "share"
    (share / "mime" / "packages").mkdir(parents=True)
    (share / "applications").mkdir(parents=True)
    for sub in ["mime/packages", "applications"]:
        for p in (root / "usr" / "share" / sub).iterdir():
            shutil.copy2(p, share / sub / p.name)
    rc, out, err = run(["update-mime-database", "-V", share / "mime"])
    complaints = [line for line in (out + err).splitlines()
                  if re.search(r"warning|error|invalid|unknown", line, re.I)]
    r.check("update-mime-database accepts the MIME package", rc == 0 and not complaints,
            f"exit {rc}\n{indent(chr(10).join(complaints) or out + err)}")
    rc, out, err = run(["update-desktop-database", share / "applications"])
    r.check("update-desktop-database accepts the desktop file", rc == 0 and not err.strip(), err)

    home = tmp / "xdg" / "home"
    for d in ["config", "config-dirs", "data-home"]:
        (home / d).mkdir(parents=True)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("XDG_", "KDE_", "GNOME_")) and k not in ("DESKTOP_SESSION", "DISPLAY")}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "config"), XDG_CONFIG_DIRS=str(home / "config-dirs"),
               XDG_DATA_HOME=str(home / "data-home"), XDG_DATA_DIRS=f"{share}:/usr/share")

    samples = tmp / "samples"
    samples.mkdir()
    example = (root / EXAMPLE).read_bytes()
    plain_zip = samples / "plain.zip"
    with zipfile.ZipFile(plain_zip, "w") as z:
        z.writestr("notes/readme.txt", "not a checkpoint\n")
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    cases = {
        "model.pth": (example, PYTORCH_TYPE),
        "model.pt": (example, PYTORCH_TYPE),
        "model.ckpt": (example, PYTORCH_TYPE),
        "pytorch_model.bin": (example, PYTORCH_TYPE),        # torch zip, typed by content
        "legacy_model.bin": (LEGACY_HEADER, PYTORCH_TYPE),     # legacy torch.save stream
        "pickled.bin": (b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94.", PYTORCH_TYPE),
        "model.safetensors": (struct.pack("<Q", len(header)) + header + b"\0" * 4, SAFETENSORS_TYPE),
        "model.ptl": (example, PYTORCH_TYPE),                 # a mobile (lite interpreter) archive
        "model.safetensors.index.json": (json.dumps({"metadata": {}, "weight_map": {"w": "model.safetensors"}}).encode(),
                                         SAFETENSORS_TYPE),  # a sharded model's index, not any JSON
        "config.json": (b'{"model_type": "bert"}', "application/json"),
        "firmware.bin": (bytes(range(1, 64)) * 4, "application/octet-stream"),  # .bin is not claimed
        "plain.zip": (plain_zip.read_bytes(), "application/zip"),
        "archive.bin": (plain_zip.read_bytes(), "application/zip"),             # a zip that is no checkpoint
        "archive": (plain_zip.read_bytes(), "application/zip"),
    }
    for name, (data, want) in cases.items():
        path = samples / name
        path.write_bytes(data)
        rc, out, err = run(["xdg-mime", "query", "filetype", path], env=env)
        r.check(f"xdg-mime query filetype {name} -> {want}", rc == 0 and out.strip() == want,
                f"exit {rc}, got {out.strip()!r} {err.strip()}")
    for mime in [PYTORCH_TYPE, SAFETENSORS_TYPE]:
        rc, out, err = run(["xdg-mime", "query", "default", mime], env=env)
        r.check(f"xdg-mime query default {mime} -> {DESKTOP_ID}", rc == 0 and out.strip() == DESKTOP_ID,
                f"exit {rc}, got {out.strip()!r} {err.strip()}")


if __name__ == "__main__":
    sys.exit(main())
