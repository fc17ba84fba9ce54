import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { containerActionFor, containerName, exitFromStatusCode, planBinds } from "./container-plan.js";

describe("planBinds", () => {
  const needed = [
    { path: "/srv/pool/.hsmpool/run", readWrite: true },
    { path: "/srv/pool/.hsmpool/fabric", readWrite: true },
    { path: "/srv/pool/packages/node/dist", readWrite: false },
  ];

  it("mounts every path at itself when the HFC runs on the host (bundle read-only)", () => {
    expect(planBinds(needed, undefined)).toEqual([
      "/srv/pool/.hsmpool/run:/srv/pool/.hsmpool/run:rw",
      "/srv/pool/.hsmpool/fabric:/srv/pool/.hsmpool/fabric:rw",
      "/srv/pool/packages/node/dist:/srv/pool/packages/node/dist:ro",
    ]);
  });

  it("maps paths through the HFC container's own mounts and leaves image paths alone", () => {
    const mounts = [
      { source: "/home/me/repo/.hsmpool/run", destination: "/app/.hsmpool/run", readWrite: true },
      { source: "/home/me/repo/.hsmpool/fabric", destination: "/app/.hsmpool/fabric", readWrite: true },
      { source: "/var/run/docker.sock", destination: "/var/run/docker.sock", readWrite: true },
    ];
    const inContainer = [
      { path: "/app/.hsmpool/run", readWrite: true },
      { path: "/app/.hsmpool/fabric", readWrite: true },
      { path: "/app/packages/node/dist", readWrite: false },
    ];
    expect(planBinds(inContainer, mounts)).toEqual([
      "/home/me/repo/.hsmpool/run:/app/.hsmpool/run:rw",
      "/home/me/repo/.hsmpool/fabric:/app/.hsmpool/fabric:rw",
    ]);
  });

  it("uses the innermost mount holding a path, read-only when either side is, and never a sibling prefix", () => {
    const mounts = [
      { source: "/h/state", destination: "/s", readWrite: true },
      { source: "/h/run-ro", destination: "/s/run", readWrite: false },
      { source: "/h/other", destination: "/s/run2", readWrite: true },
    ];
    expect(planBinds([{ path: "/s/run/nodes/n1", readWrite: true }], mounts)).toEqual([
      "/h/run-ro:/s/run:ro",
    ]);
    expect(planBinds([{ path: "/s/runner", readWrite: true }], mounts)).toEqual(["/h/state:/s:rw"]);
  });

  it("gives every needed path under a mount exactly one bind to that mount's destination (property)", () => {
    const segment = fc.stringMatching(/^[a-z]{1,6}$/);
    fc.assert(
      fc.property(
        fc.array(fc.array(segment, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 5 }),
        (paths) => {
          const mounts = [{ source: "/host/x", destination: "/x", readWrite: true }];
          const needed = paths.map((p) => ({ path: `/x/${p.join("/")}`, readWrite: true }));
          expect(planBinds(needed, mounts)).toEqual(["/host/x:/x:rw"]);
        },
      ),
    );
  });
});

describe("exitFromStatusCode", () => {
  it("reads 128+n as killed by signal n (docker kill gives 137)", () => {
    expect(exitFromStatusCode(137)).toEqual({ code: null, signal: "SIGKILL" });
    expect(exitFromStatusCode(143)).toEqual({ code: null, signal: "SIGTERM" });
  });

  it("keeps the node's own exit codes (0, refused launch 3, refused join 4)", () => {
    for (const code of [0, 1, 2, 3, 4]) expect(exitFromStatusCode(code)).toEqual({ code, signal: null });
  });

  it("says nothing it does not know", () => {
    expect(exitFromStatusCode(undefined)).toEqual({ code: null, signal: null });
    expect(exitFromStatusCode(-1)).toEqual({ code: null, signal: null });
  });
});

describe("containerActionFor", () => {
  it("maps kill/term to Docker kills and stop/continue to pause/unpause; other signals to nothing", () => {
    expect(containerActionFor("SIGKILL")).toBe("kill");
    expect(containerActionFor("SIGTERM")).toBe("terminate");
    expect(containerActionFor("SIGSTOP")).toBe("pause");
    expect(containerActionFor("SIGCONT")).toBe("unpause");
    expect(containerActionFor("SIGUSR1")).toBeUndefined();
  });
});

describe("containerName", () => {
  it("is one name per pool member, with only characters Docker accepts", () => {
    expect(containerName("pool-1a2b", "n4")).toBe("hsmpool-pool-1a2b-n4");
    fc.assert(
      fc.property(fc.string(), fc.string(), (pool, node) => {
        expect(containerName(pool, node)).toMatch(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/);
      }),
    );
  });
});
