#!/usr/bin/env python3
"""Is a benchmark run valid? The one rule of BENCHMARKS.md ("Which numbers count"), for step 3 of
scripts/bench.sh and for the modes that take floor rounds (floor, overload, streams, mtls).

Every round of the floor (a bare tonic server alone on the server's core) must reach BENCH_FLOOR_VALID
(0.8) of the quiet reference: the highest of this run's best round, the reference an earlier valid
step 3 stored on this machine, and BENCH_FLOOR_REFERENCE (GetUserCourses/s) given from outside. A
machine slowed evenly throughout passes when judged only against itself, so such a verdict says so.

    bench_validity.py step3 RESULTS REF_FILE NEED MACHINE GIVEN
        judges the rounds rps.floor.<rpc>.<n>, appends floor_reference.*, run.valid and
        run.invalid_reason to RESULTS, and raises the stored reference when the run is valid.
    bench_validity.py mode RESULTS REF_FILE NEED MACHINE GIVEN SUMMARY
        judges the rounds floor.<name>.GetUserCourses, appends run.valid (1, 0, or unknown when
        nothing outside the run says what quiet is) to RESULTS and the verdict to SUMMARY.
"""
import sys

RPCS = ("GetStatus", "GetUserCourses")


def read_tsv(path):
    with open(path) as f:
        return dict(line.rstrip("\n").split("\t", 1) for line in f if "\t" in line)


def read_stored(ref_file):
    try:
        with open(ref_file) as f:
            return {k: float(v) for k, v in (line.split() for line in f if line.strip())}
    except OSError:
        return {}


def rounds_of(results, kind):
    """{rpc: [(round's name, req/s)]} from the keys each kind of run records, in the order measured."""
    rounds = {}
    for key, value in results.items():
        parts = key.split(".")
        if kind == "step3" and key.startswith("rps.floor.") and len(parts) == 4:
            rpc, name = parts[2], f"round {parts[3]}"
        elif kind == "mode" and key.startswith("floor.") and len(parts) == 3:
            name, rpc = parts[1], parts[2]
        else:
            continue
        rounds.setdefault(rpc, []).append((name, float(value)))
    return rounds


def judge(rounds, stored, given, need, machine, ref_file):
    """(reasons, {rpc: (reference, source)}); no reasons means valid."""
    reasons, refs = [], {}
    for rpc in RPCS:
        if rpc not in rounds:
            continue
        best = max(v for _, v in rounds[rpc])
        outside = given if rpc == "GetUserCourses" else 0.0
        ref = max(best, stored.get(rpc, 0.0), outside)
        if ref == best:
            source = "this run" if stored.get(rpc) or outside else "this run only: no stored or given reference"
        elif ref == outside:
            source = "BENCH_FLOOR_REFERENCE"
        else:
            source = f"an earlier valid run ({ref_file})"
        refs[rpc] = (ref, source)
        for name, v in rounds[rpc]:
            if v <= 0:
                reasons.append(f"{rpc} {name}: the floor round failed (see logs/)")
            elif v < need * ref:
                reasons.append(f"{rpc} {name}: floor {v:,.0f} req/s < {need:.0%} of {ref:,.0f} ({source})")
    if not rounds:
        reasons.append("no floor round was measured (see logs/)")
    if machine != "quiet":
        reasons.append("the machine was busy at the start (--force; see machine.txt)")
    return reasons, refs


def main(argv):
    kind, results_path, ref_file, need, machine, given = argv[:6]
    need, given = float(need), float(given or 0)
    rounds = rounds_of(read_tsv(results_path), kind)
    stored = read_stored(ref_file)
    reasons, refs = judge(rounds, stored, given, need, machine, ref_file)
    only_itself = all(source.startswith("this run only") for _, source in refs.values())
    if reasons:
        valid = "0"
    elif kind == "mode" and only_itself:
        valid = "unknown"
    else:
        valid = "1"
    out = []
    if kind == "step3":
        for rpc, (ref, source) in refs.items():
            out += [f"floor_reference.{rpc}\t{ref:.0f}", f"floor_reference_source.{rpc}\t{source}"]
    out += [f"run.valid\t{valid}", f"run.invalid_reason\t{'; '.join(reasons)}"]
    with open(results_path, "a") as f:
        f.writelines(line + "\n" for line in out)
    if kind == "step3" and valid == "1":
        # A valid run on a quiet machine raises the stored reference; nothing else touches it.
        for rpc, values in rounds.items():
            stored[rpc] = max(stored.get(rpc, 0.0), max(v for _, v in values))
        with open(ref_file, "w") as f:
            f.writelines(f"{k}\t{v:.0f}\n" for k, v in sorted(stored.items()))
    if kind == "mode":
        summary = argv[6]
        listed = ", ".join(f"{name} {v:,.0f}" for name, v in rounds.get("GetUserCourses", []))
        if valid == "0":
            verdict = "**INVALID**: " + "; ".join(reasons)
        elif valid == "unknown":
            verdict = ("validity unknown: judged only against itself, with no quiet reference on this machine "
                       "(a valid `scripts/bench.sh` run stores one; BENCHMARKS.md's machines did 72.5k-77.5k "
                       "on a quiet core: BENCH_FLOOR_REFERENCE=72500 judges against that)")
        else:
            ref, source = refs["GetUserCourses"]
            verdict = f"VALID: every floor round within {need:.0%} of {ref:,.0f} ({source})"
        line = (f"\nThe floor (GetUserCourses/s, alone on the server's core): {listed or 'not measured'}. "
                f"The run is {verdict}.\n")
        with open(summary, "a") as f:
            f.write(line)
        print(line.strip())


if __name__ == "__main__":
    if len(sys.argv) < 7 or sys.argv[1] not in ("step3", "mode") or (sys.argv[1] == "mode" and len(sys.argv) < 8):
        sys.exit(__doc__)
    main(sys.argv[1:])
