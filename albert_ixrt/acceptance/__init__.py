"""The acceptance session and its two doors, and the acceptance test modules that ship with the package.

    options.py   the option table both doors read (spelling, default, check)
    plan.py      every decision, derived once from the options (subject, data, feeds, engine profile, steps)
    session.py   builds each artefact once; ``step(name)`` -> one ``StepResult`` with a verdict per item
    checks.py    the checks of each step (one rule per check: compare.element_check, verdicts)
    results.py   the result types and the sign-off rule (SIGNED OFF / NOT SIGNED OFF / FAILED)
    record.py    the sign-off record (report.json) and its files; report_md.py: report.md, the summary
    door.py      the pytest door (the plugin's fixtures and hooks delegate here); pipeline.py: run's door
    test_*.py    the acceptance tests: each asserts one item verdict of the session
                 (``python -m pytest --pyargs albert_ixrt.acceptance -m perf --model /abs/mine``)
"""
