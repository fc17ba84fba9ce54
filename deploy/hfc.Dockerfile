# The HSM fabric controller image: the HFC, the CLI and their production dependencies on the offline base image
# (scripts/docker-build.mjs). deploy/entry/hfc.mjs creates the simulated fabric on first start, then runs the HFC.
FROM hsmpool-base:latest
COPY app /app
WORKDIR /app
LABEL org.hsmpool.role="hfc"
ENTRYPOINT ["/sbin/tini", "--", "/usr/local/bin/node", "/app/deploy/entry/hfc.mjs"]
