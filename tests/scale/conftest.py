def pytest_configure(config):
    config.addinivalue_line("markers", "distributed: spawns torch.distributed (gloo, CPU) process groups")
