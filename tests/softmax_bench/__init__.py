"""Tests of the public package softmax_bench (testing API, pytest plugin, strategies)."""
