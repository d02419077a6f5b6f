#!/usr/bin/env python3
"""Tests of scripts/bench_validity.py, the rule that says whether a benchmark run counts.
Run by CI (seconds); `python3 scripts/test_bench_validity.py` alone works too."""
import os
import subprocess
import sys
import tempfile
import unittest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_validity.py")


class Run:
    """One run's directory: results.tsv, the stored reference, summary.md."""

    def __init__(self, rows, stored=None):
        self.dir = tempfile.TemporaryDirectory()
        self.results = os.path.join(self.dir.name, "results.tsv")
        self.ref_file = os.path.join(self.dir.name, "reference.tsv")
        self.summary = os.path.join(self.dir.name, "summary.md")
        with open(self.results, "w") as f:
            f.writelines(f"{k}\t{v}\n" for k, v in rows.items())
        if stored is not None:
            with open(self.ref_file, "w") as f:
                f.writelines(f"{k}\t{v}\n" for k, v in stored.items())

    def judge(self, kind, given="", machine="quiet"):
        args = [sys.executable, SCRIPT, kind, self.results, self.ref_file, "0.8", machine, given]
        if kind == "mode":
            args.append(self.summary)
        subprocess.run(args, check=True, capture_output=True, text=True)
        with open(self.results) as f:
            return dict(line.rstrip("\n").split("\t", 1) for line in f if "\t" in line)

    def stored(self):
        if not os.path.exists(self.ref_file):
            return None
        with open(self.ref_file) as f:
            return dict(line.split() for line in f if line.strip())

    def summary_text(self):
        with open(self.summary) as f:
            return f.read()


def step3_rows(guc, status=(100000,)):
    rows = {f"rps.floor.GetUserCourses.{i + 1}": v for i, v in enumerate(guc)}
    rows.update({f"rps.floor.GetStatus.{i + 1}": v for i, v in enumerate(status)})
    return rows


class Case(unittest.TestCase):
    def run_of(self, rows, stored=None):
        run = Run(rows, stored)
        self.addCleanup(run.dir.cleanup)
        return run


class Step3(Case):
    def test_first_run_judged_only_against_itself_stores_its_best(self):
        run = self.run_of(step3_rows([70000, 72000, 71000]))
        r = run.judge("step3")
        self.assertEqual(r["run.valid"], "1")
        self.assertEqual(r["floor_reference.GetUserCourses"], "72000")
        self.assertIn("this run only", r["floor_reference_source.GetUserCourses"])
        self.assertEqual(run.stored()["GetUserCourses"], "72000")

    def test_a_round_below_80_percent_of_its_own_best_is_invalid(self):
        run = self.run_of(step3_rows([70000, 50000]))
        r = run.judge("step3")
        self.assertEqual(r["run.valid"], "0")
        self.assertIn("GetUserCourses round 2: floor 50,000", r["run.invalid_reason"])
        self.assertIsNone(run.stored(), "an invalid run must not store a reference")

    def test_a_slowed_machine_fails_against_the_given_reference(self):
        run = self.run_of(step3_rows([30000, 31000]))
        r = run.judge("step3", given="72500")
        self.assertEqual(r["run.valid"], "0")
        self.assertIn("BENCH_FLOOR_REFERENCE", r["run.invalid_reason"])

    def test_the_stored_reference_is_raised_only_upwards(self):
        run = self.run_of(step3_rows([78000], status=(110000,)), stored={"GetUserCourses": 75000, "GetStatus": 120000})
        r = run.judge("step3")
        self.assertEqual(r["run.valid"], "1")
        self.assertEqual(run.stored(), {"GetUserCourses": "78000", "GetStatus": "120000"})

    def test_a_busy_machine_is_invalid_whatever_the_floor(self):
        r = self.run_of(step3_rows([72000])).judge("step3", machine="busy")
        self.assertEqual(r["run.valid"], "0")
        self.assertIn("busy", r["run.invalid_reason"])


class Mode(Case):
    def test_without_a_reference_validity_is_unknown(self):
        run = self.run_of({"floor.before.GetUserCourses": 30000, "floor.after.GetUserCourses": 31000})
        r = run.judge("mode")
        self.assertEqual(r["run.valid"], "unknown")
        self.assertIn("validity unknown", run.summary_text())
        self.assertIn("before 30,000, after 31,000", run.summary_text())

    def test_a_machine_that_slowed_during_the_run_is_invalid_even_without_a_reference(self):
        run = self.run_of({"floor.before.GetUserCourses": 32000, "floor.after.GetUserCourses": 21000})
        r = run.judge("mode")
        self.assertEqual(r["run.valid"], "0")
        self.assertIn("GetUserCourses after: floor 21,000", r["run.invalid_reason"])

    def test_valid_against_the_stored_reference_and_never_stores(self):
        run = self.run_of({"floor.before.GetUserCourses": 65000, "floor.after.GetUserCourses": 66000},
                  stored={"GetUserCourses": 72500})
        r = run.judge("mode")
        self.assertEqual(r["run.valid"], "1")
        self.assertIn("VALID: every floor round within 80% of 72,500", run.summary_text())
        self.assertEqual(run.stored(), {"GetUserCourses": "72500"})

    def test_the_higher_of_stored_and_given_reference_counts(self):
        run = self.run_of({"floor.before.GetUserCourses": 60000}, stored={"GetUserCourses": 50000})
        r = run.judge("mode", given="80000")
        self.assertEqual(r["run.valid"], "0")
        self.assertIn("BENCH_FLOOR_REFERENCE", r["run.invalid_reason"])

    def test_a_failed_round_is_invalid(self):
        r = self.run_of({"floor.before.GetUserCourses": 0, "floor.after.GetUserCourses": 70000}).judge("mode", given="72500")
        self.assertEqual(r["run.valid"], "0")
        self.assertIn("GetUserCourses before: the floor round failed", r["run.invalid_reason"])

    def test_no_round_at_all_is_invalid(self):
        run = self.run_of({"overload.max": 16000})
        r = run.judge("mode", given="72500")
        self.assertEqual(r["run.valid"], "0")
        self.assertIn("not measured", run.summary_text())


if __name__ == "__main__":
    unittest.main()
