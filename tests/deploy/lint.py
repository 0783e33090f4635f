"""Lint rules for the deployment files, written as code (hadolint-style for the Containerfile).

Each ``*_problems`` function takes a file's text and returns one line per broken rule (empty:
fine), so that the tests can show a rule holds for the real file and fails for a broken one.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"

_SECRET_NAMES = re.compile(
    r"(^|/)(\.env|id_rsa|id_ed25519|.*\.key|.*\.pem|.*\.p12|.*\.crt|tokens(\.txt)?|"
    r"munge\.key|\.git|\.netrc|\.pypirc|server\.yaml\.local)$"
)
"""Source paths a COPY/ADD/%files must not take (keys, certificates, token files, VCS data)."""


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def parse_containerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """(global ARG defaults, stages) of a Containerfile; continuation lines are joined."""
    logical: list[tuple[int, str]] = []
    buffer, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            continue
        if buffer and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if not buffer:
            start = number
        if stripped.endswith("\\"):
            buffer += stripped[:-1] + " "
            continue
        logical.append((start, buffer + stripped))
        buffer = ""
    if buffer:
        logical.append((start, buffer))
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for number, line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        args = args.strip()
        if keyword == "FROM":
            words = [w for w in args.split() if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        elif not stages:
            if keyword == "ARG":
                key, _, value = args.partition("=")
                global_args[key.strip()] = value.strip().strip('"')
        else:
            stages[-1].instructions.append(Instruction(keyword, args, number))
    return global_args, stages


def _expand(value: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), value)


def _chain(stages: list[Stage], stage: Stage) -> list[Stage]:
    """``stage`` and the stages it is built FROM, the first base first."""
    by_name = {s.name: s for s in stages if s.name}
    chain = [stage]
    while chain[0].base in by_name:
        chain.insert(0, by_name[chain[0].base])
    return chain


def image_reference_problems(reference: str, where: str) -> list[str]:
    """A base image must be pinned: a digest, or a tag that names a version (not ``latest``)."""
    if "@sha256:" in reference:
        return []
    name, _, tag = reference.rpartition(":")
    if not name or "/" in tag:
        return [f"{where}: base image {reference!r} has no tag (pin a version or a digest)"]
    if tag == "latest" or not re.search(r"\d", tag):
        return [f"{where}: base image {reference!r} is not pinned to a version"]
    return []


def containerfile_problems(text: str, root: Path = ROOT) -> list[str]:
    global_args, stages = parse_containerfile(text)
    problems: list[str] = []
    if len(stages) < 2:
        return ["not a multi-stage build (a builder stage and a runtime stage)"]
    names = {s.name for s in stages if s.name}
    final = stages[-1]
    chain = _chain(stages, final)
    effective = [i for s in chain for i in s.instructions]

    for stage in stages:
        if stage.base not in names:
            base = _expand(stage.base, global_args)
            problems += image_reference_problems(base, f"FROM {stage.base}")
    if re.search(r"(?i):latest\b", text):
        problems.append("the file names a :latest tag")

    builders = [s for s in stages if any("pip wheel" in i.args for i in s.all("RUN"))]
    if not builders:
        problems.append("no builder stage builds wheels (pip wheel)")
    elif builders[0] in chain:
        problems.append("the builder stage is part of the final image")
    elif not any(
        i.args.startswith(f"--from={builders[0].name}") for s in chain for i in s.all("COPY")
    ):
        problems.append("the final image does not install from the builder stage's output")

    users = [i for i in effective if i.keyword == "USER"]
    cmds = [i for i in effective if i.keyword in ("CMD", "ENTRYPOINT")]
    if not cmds:
        problems.append("the final image has no CMD or ENTRYPOINT")
    if not users:
        problems.append("the final image sets no USER (it would run as root)")
    else:
        last_user = users[-1].args.split(":")[0]
        if last_user in ("root", "0"):
            problems.append(f"the final image runs as {last_user}")
        if cmds and effective.index(users[-1]) > effective.index(cmds[-1]):
            problems.append("USER comes after CMD")
    checks = [i for i in effective if i.keyword == "HEALTHCHECK"]
    if not checks or checks[-1].args.strip().upper() == "NONE":
        problems.append("the final image has no HEALTHCHECK")
    else:
        probe = re.search(r"(/\S+\.py)", checks[-1].args)
        copied = " ".join(i.args for i in effective if i.keyword == "COPY")
        if probe is None or probe.group(1) not in copied:
            problems.append("the HEALTHCHECK's probe is not copied into the image")

    for stage in stages:
        for instruction in stage.all("ADD"):
            if re.search(r"https?://", instruction.args):
                problems.append(f"line {instruction.line}: ADD from a URL (unverified download)")
        for instruction in stage.all("COPY") + stage.all("ADD"):
            words = [w for w in shlex.split(instruction.args) if not w.startswith("--")]
            if instruction.args.startswith("--from="):
                continue
            for source in words[:-1]:
                if source in (".", "./", "*"):
                    problems.append(
                        f"line {instruction.line}: copies the whole build context "
                        "(virtual environments, caches, secrets)"
                    )
                elif _SECRET_NAMES.search(source.rstrip("/")):
                    problems.append(f"line {instruction.line}: copies a secret-like file {source}")
                elif not (root / source).exists():
                    problems.append(f"line {instruction.line}: {source} is not in the repository")
        for instruction in stage.all("RUN"):
            if "apt-get install" in instruction.args:
                if "--no-install-recommends" not in instruction.args:
                    problems.append(
                        f"line {instruction.line}: apt-get install without --no-install-recommends"
                    )
                if "/var/lib/apt/lists" not in instruction.args:
                    problems.append(f"line {instruction.line}: apt lists left in the layer")
            if (
                re.search(r"\bpip3? install\b", instruction.args)
                and "--no-index" not in (instruction.args)
                and stage in chain
            ):
                problems.append(
                    f"line {instruction.line}: the runtime stage installs from an index"
                )

    envs = " ".join(i.args for i in effective if i.keyword == "ENV")
    cache = re.search(r"NUMBA_CACHE_DIR=(\S+)", envs)
    if cache is None:
        problems.append("NUMBA_CACHE_DIR is not set in the final image")
    else:
        runs = [i for i in effective if i.keyword == "RUN"]
        installs = [i for i in runs if re.search(r"\bpip3? install\b", i.args)]
        warms = [i for i in runs if "brainsim run" in i.args]
        if not warms:
            problems.append("the kernels are not compiled at build time (no brainsim run)")
        elif installs and effective.index(warms[0]) < effective.index(installs[-1]):
            problems.append("the kernels are compiled before brainsim is installed")
        elif not any(
            re.search(r"chown\b.*NUMBA_CACHE_DIR|chown\b.*" + re.escape(cache.group(1)), i.args)
            for i in runs
        ):
            problems.append(
                "the kernel cache is not handed to the runtime user (numba uses "
                "NUMBA_CACHE_DIR only where it can write)"
            )
    return problems


def apptainer_sections(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """(header keys, section name -> body) of an Apptainer definition file."""
    header: dict[str, str] = {}
    sections: dict[str, str] = {}
    current: str | None = None
    for raw in text.splitlines():
        match = re.match(r"^%(\w+)", raw)
        if match:
            current = match.group(1)
            sections[current] = ""
        elif current is not None:
            sections[current] += raw + "\n"
        elif raw.strip() and not raw.lstrip().startswith("#"):
            key, _, value = raw.partition(":")
            header[key.strip()] = value.strip()
    return header, sections


def apptainer_problems(text: str, root: Path = ROOT) -> list[str]:
    header, sections = apptainer_sections(text)
    problems: list[str] = []
    if header.get("Bootstrap") not in ("docker", "oci-archive", "docker-archive", "localimage"):
        problems.append(f"Bootstrap: {header.get('Bootstrap')!r} is not a container source")
    if header.get("Bootstrap") == "docker":
        problems += image_reference_problems(header.get("From", ""), "From")
    for name in ("files", "environment", "post", "runscript", "test"):
        if not sections.get(name, "").strip():
            problems.append(f"%{name} is missing or empty")
    for line in sections.get("files", "").splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if _SECRET_NAMES.search(words[0].rstrip("/")):
            problems.append(f"%files copies a secret-like file {words[0]}")
        elif not (root / words[0]).exists():
            problems.append(f"%files: {words[0]} is not in the repository")
    environment = sections.get("environment", "")
    cache = re.search(r"NUMBA_CACHE_DIR=(\S+)", environment)
    post = sections.get("post", "")
    if cache is None:
        problems.append("%environment does not set NUMBA_CACHE_DIR")
    elif cache.group(1) not in post:
        problems.append("%post does not fill the NUMBA_CACHE_DIR of %environment")
    cpu = re.search(r"NUMBA_CPU_NAME=(\S+)", environment)
    if cpu is None or f"NUMBA_CPU_NAME={cpu.group(1)}" not in post:
        problems.append("the kernels are not compiled for the NUMBA_CPU_NAME runs use")
    install = post.find("pip install")
    warm = post.find("brainsim run")
    if install < 0 or warm < install:
        problems.append("%post does not compile the kernels after installing brainsim")
    if "mpiexec" not in sections.get("test", ""):
        problems.append("%test does not run MPI")
    return problems


def sbatch_problems(text: str) -> list[str]:
    """A batch script: shebang, #SBATCH lines before the first command, and the image used."""
    problems: list[str] = []
    lines = text.splitlines()
    if not lines or not lines[0].startswith("#!/bin/bash"):
        problems.append("no #!/bin/bash line first")
    directives = [n for n, line in enumerate(lines) if line.startswith("#SBATCH ")]
    commands = [
        n for n, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")
    ]
    if not directives:
        problems.append("no #SBATCH lines")
    elif commands and max(directives) > commands[0]:
        problems.append("an #SBATCH line after the first command (sbatch ignores it)")
    for n in directives:
        option = lines[n].split()[1]
        if not re.fullmatch(r"--[a-z-]+(=\S+)?|-[A-Za-z]", option):
            problems.append(f"line {n + 1}: malformed #SBATCH option {option!r}")
    code = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    if "apptainer exec" not in code or not re.search(r"\$\{BRAINSIM_SIF:-[^}]+\.sif\}", code):
        problems.append("the script does not run the Apptainer image (BRAINSIM_SIF)")
    if "set -euo pipefail" not in text:
        problems.append("no set -euo pipefail")
    return problems
