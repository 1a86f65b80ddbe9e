"""Floods the output from a forked child on stderr and from itself on stdout, in lines too long to
split, past the output limit."""
import os
import sys


def run(problem):
    if os.fork() == 0:
        while True:
            os.write(2, b"E" * 65536)
    while True:
        sys.stdout.write("O" * 1_000_000)
