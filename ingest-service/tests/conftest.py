pytest_plugins = ["service_common.testing"]
