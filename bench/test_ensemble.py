#!/usr/bin/env python3
"""Unit tests of ensemble.py's pure parts: `python3 bench/test_ensemble.py`."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ensemble  # noqa: E402


def outage(last_ack, first_error, first_ack, errors=3):
    return {
        "last_ack_unix_us": last_ack,
        "first_error_unix_us": first_error,
        "first_ack_unix_us": first_ack,
        "errors": errors,
        "stragglers": 0,
    }


class ParseMode(unittest.TestCase):
    def test_mode_line_of_srvr_gives_the_role(self):
        text = "Zookeeper version: 3.8.0\nLatency min/avg/max: 0/0.0/0\nMode: follower\nNode count: 5\n"
        self.assertEqual(ensemble.parse_mode(text), "follower")

    def test_a_member_that_does_not_serve_has_no_mode(self):
        text = "This ZooKeeper instance is not currently serving requests\n"
        self.assertIsNone(ensemble.parse_mode(text))


class QuorumReady(unittest.TestCase):
    def test_one_leader_and_serving_followers_is_ready(self):
        self.assertTrue(ensemble.quorum_ready({1: "follower", 2: "leader", 3: "follower"}))

    def test_a_member_not_serving_is_not_ready(self):
        self.assertFalse(ensemble.quorum_ready({1: "follower", 2: "leader", 3: None}))

    def test_no_leader_is_not_ready(self):
        self.assertFalse(ensemble.quorum_ready({1: "follower", 2: "follower", 3: "follower"}))


class FailoverTimes(unittest.TestCase):
    def test_times_are_counted_from_the_kill(self):
        t = ensemble.failover_times([outage(900_000, 1_010_000, 1_750_000)], 1_000_000)
        self.assertAlmostEqual(t["resume_s"], 0.75)
        self.assertAlmostEqual(t["first_error_s"], 0.01)
        self.assertAlmostEqual(t["gap_s"], 0.85)

    def test_outages_before_the_kill_are_skipped(self):
        early = outage(100, 200, 300)
        caused = outage(900_000, 1_200_000, 3_000_000)
        t = ensemble.failover_times([early, caused], 1_000_000)
        self.assertAlmostEqual(t["resume_s"], 2.0)

    def test_writes_that_never_resumed_have_no_resume_time(self):
        t = ensemble.failover_times([outage(900_000, 1_100_000, None)], 1_000_000)
        self.assertIsNone(t["resume_s"])
        self.assertIsNone(t["gap_s"])

    def test_no_failure_after_the_kill_gives_nothing(self):
        self.assertIsNone(ensemble.failover_times([outage(1, 2, 3)], 1_000_000))


class TrialsPerRound(unittest.TestCase):
    def test_five_trials_over_three_rounds_front_load_the_remainder(self):
        self.assertEqual(ensemble.trials_per_round(5, 3), [2, 2, 1])

    def test_every_trial_is_placed(self):
        for total in range(0, 12):
            for rounds in range(1, 6):
                self.assertEqual(sum(ensemble.trials_per_round(total, rounds)), total)


if __name__ == "__main__":
    unittest.main()
