"""The hook pod (``krally hook run``, :mod:`.pod`): one firing of one hook, its result in the
container's termination message. An armed pod (:mod:`.armed`) is created before its firing,
prepares the hook and waits for the firing: on its own task's watch and on the runner's firing
signal (:mod:`.signal`), whichever comes first."""
