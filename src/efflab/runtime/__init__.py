"""Runtime layer: the job side. Executes one invocation on the host or in a container; kept import-light because it starts once per job."""
