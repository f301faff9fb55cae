"""The catalog platform's test kit: what every suite uses to start servers, write sample files, wait,
walk pages and make accounts, kept out of the runtime packages (``make setup`` installs it, no image does).

Suites load its fixtures with ``-p catalog_testkit.plugin`` (their pytest settings say so).
"""
