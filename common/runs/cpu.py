"""What the CPU is, read from /proc/cpuinfo (Linux; elsewhere nothing is claimed): its
name and the widest vector instructions it has, which every speed figure names, and its
flags, which `--precision auto` reads. No Keras here, so report.py can use it."""

CPUINFO = "/proc/cpuinfo"
# The vector width a figure depends on, widest first: TensorFlow turns oneDNN on by itself
# only with AVX-512's newer parts; the toolkit does so on AVX2 as well (common.startup).
VECTOR_WIDTHS = (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"))


def cpuinfo_fields(cpuinfo: str = CPUINFO) -> dict[str, str]:
    """The first processor's fields ("model name", "flags", ...); empty where the file
    cannot be read (not Linux)."""
    try:
        with open(cpuinfo) as handle:
            text = handle.read()
    except OSError:
        return {}
    first = text.split("\n\n")[0]
    return {key.strip(): value.strip() for key, _, value in
            (line.partition(":") for line in first.splitlines()) if key.strip()}


def cpu_flags(cpuinfo: str = CPUINFO) -> set[str]:
    """The CPU's instruction-set flags ("avx2", "avx512_bf16", ...)."""
    return flags_of(cpuinfo_fields(cpuinfo))


def flags_of(fields: dict[str, str]) -> set[str]:
    """The instruction-set flags among a processor's `cpuinfo_fields`."""
    return set(fields.get("flags", "").split())


def vector_width(flags: set[str]) -> str:
    """"AVX-512", "AVX2", "AVX" or "" (unknown): the widest vectors these flags give."""
    return next((name for flag, name in VECTOR_WIDTHS if flag in flags), "")


def cpu_description(cpuinfo: str = CPUINFO) -> str:
    """e.g. "AMD EPYC, AVX2" ("" where /proc/cpuinfo cannot be read)."""
    fields = cpuinfo_fields(cpuinfo)
    return ", ".join(part for part in (fields.get("model name", ""),
                                       vector_width(flags_of(fields))) if part)
