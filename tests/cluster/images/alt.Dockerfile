# A second image for hooks that set `job.image` (and runners that set `runnerPod.image`):
# krally's image plus a file only it has, so a hook that reads the file proves it ran in this
# image and not in the default one, and test-only plugins (the KrallyTest.keep_memory scenario,
# the krally_test_garbage hook).
ARG KRALLY_IMAGE=localhost/krally:test
FROM ${KRALLY_IMAGE}
USER 0:0
RUN mkdir -p /usr/share/krally-alt && echo "alt image" > /usr/share/krally-alt/marker
COPY plugins/ /usr/share/krally-alt/plugins/
ENV KRALLY_PLUGIN_PATH=/usr/share/krally-alt/plugins
USER 65532:65532
