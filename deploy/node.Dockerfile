# The TEE node image: the node's signed enclave bundle (packages/node/dist) and its production dependencies on the
# offline base image (scripts/docker-build.mjs makes both; nothing is pulled). The base has no shell: exec form only.
# Run: docker run --network host -v <run+fabric dirs> hsmpool-node --config <run>/nodes/<id>/config.json
FROM hsmpool-base:latest
COPY app /app
WORKDIR /app
LABEL org.hsmpool.role="node"
ENTRYPOINT ["/sbin/tini", "--", "/usr/local/bin/node", "/app/packages/node/dist/main.js"]
