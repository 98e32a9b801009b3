"""newsbot's application: configuration, wiring, jobs and the command line."""
