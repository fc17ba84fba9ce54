import { describe, expect, it } from "vitest";
import { crashLoopOf, initialHealingState, restartDelayMs } from "./controller.js";
import { restoreHealingState, toHealingFile } from "./persisted.js";
import { config, Driver, observation, phasesOf } from "./testing/healing.js";

const launchesOf = (d: Driver) => d.actions.filter((a) => a.type === "launch").map((a) => a.memberId);

/** Takes a joiner through attesting → learner → voter → synced with the replaced member gone. */
function joinFully(d: Driver, joiner: string, replaced: string, t0: number): void {
  d.launched(joiner, t0);
  d.status(joiner, { role: "learner", membership: "joining", ownership: "pending", members: [] }, t0 + 10);
  const conf = (role: string) =>
    ["n1", "n2", "n3"]
      .filter((id) => d.member(id).lifecycle === "active")
      .map((id) => ({ id, role: "voter" }))
      .concat([{ id: joiner, role }]);
  d.status(
    joiner,
    { role: "learner", membership: "learner", ownership: "pending", members: conf("learner") },
    t0 + 20,
  );
  d.status(
    joiner,
    { role: "secondary", membership: "voter", ownership: "pending", members: conf("voter") },
    t0 + 30,
  );
  d.status(
    joiner,
    {
      role: "secondary",
      membership: "voter",
      ownership: "synced",
      members: conf("voter").filter((m) => m.id !== replaced),
    },
    t0 + 40,
  );
}

describe("healing controller: crashed process on a healthy server", () => {
  it("restarts it in place at once and follows detected → launching → catching_up → ready", () => {
    const d = new Driver().boot();
    expect(d.exited("n2", 100)).toEqual([{ type: "launch", memberId: "n2" }]);
    const r = d.latest();
    expect(r).toMatchObject({ kind: "restart", memberId: "n2", replacementId: "", phase: "launching" });
    d.launched("n2", 120);
    d.status("n2", { ownership: "pending", role: "candidate" }, 300);
    expect(d.record(r.id).phase).toBe("catching_up");
    d.status("n2", { ownership: "synced", role: "secondary" }, 900);
    expect(d.record(r.id).phases).toEqual([
      { phase: "detected", atMs: 100 },
      { phase: "launching", atMs: 100 },
      { phase: "catching_up", atMs: 300 },
      { phase: "ready", atMs: 900 },
    ]);
    expect(d.member("n2").lifecycle).toBe("active");
    expect(d.actions).toEqual([{ type: "launch", memberId: "n2" }]);
  });

  it("never launches twice for one crash: repeated exit reports, ticks and missed polls add nothing", () => {
    const d = new Driver().boot();
    const pid = d.state.runtime.n3?.pid ?? 0;
    d.exited("n3", 100);
    d.feed({
      type: "process-exited",
      memberId: "n3",
      pid,
      exit: { code: null, signal: "SIGKILL" },
      refusal: null,
      atMs: 101,
    });
    d.feed({ type: "node-status", memberId: "n3", status: null, atMs: 102 });
    for (let t = 110; t < 2000; t += 250) d.feed({ type: "tick", atMs: t });
    expect(launchesOf(d)).toEqual(["n3"]);
    expect(d.state.healings.filter((r) => r.memberId === "n3")).toHaveLength(1);
  });

  it("backs off when the restarted process keeps crashing before it is ready, and resets once ready", () => {
    const cfg = config();
    const d = new Driver(cfg).boot();
    d.exited("n1", 0);
    d.launched("n1", 10);
    d.exited("n1", 50); // crashed again before ready: the next restart waits
    expect(launchesOf(d)).toEqual(["n1"]);
    const delay = restartDelayMs(cfg, 1);
    expect(delay).toBeGreaterThan(0);
    d.feed({ type: "tick", atMs: 50 + delay - 1 });
    expect(launchesOf(d)).toEqual(["n1"]);
    d.feed({ type: "tick", atMs: 50 + delay });
    expect(launchesOf(d)).toEqual(["n1", "n1"]);
    d.launched("n1", 60 + delay);
    d.status("n1", {}, 70 + delay);
    expect(d.latest().phase).toBe("ready");
    expect(d.state.runtime.n1?.consecutiveRestarts).toBe(0);
    d.exited("n1", 10_000);
    expect(launchesOf(d)).toEqual(["n1", "n1", "n1"]); // immediately again
  });

  it("a crash loop is reported with its last error, backed off, and after the limit fenced and replaced elsewhere", () => {
    const cfg = config();
    const d = new Driver(cfg).boot(0, "n2");
    const server = d.member("n1").serverId;
    let t = 100;
    const launchTimes: number[] = [];
    const exit = (atMs: number) =>
      d.feed({
        type: "process-exited",
        memberId: "n1",
        pid: d.state.runtime.n1?.pid ?? 0,
        exit: { code: 1, signal: null },
        refusal: null,
        lastError: "node failed to start: fabric server r1-s1 is missing",
        atMs,
      });
    exit(t);
    expect(crashLoopOf(d.state, "n1")).toBeNull(); // one crash is not a loop
    // Every launch exits again before the member is ready (its server's files are gone).
    let handled = 0;
    for (let i = 0; i < 50 && d.member("n1").lifecycle === "active"; i++) {
      for (; launchesOf(d).length === handled && t < 600_000; t += 100) d.feed({ type: "tick", atMs: t });
      if (launchesOf(d).length === handled) break;
      handled += 1;
      launchTimes.push(t);
      d.launched("n1", t);
      exit(t + 50);
      if (i >= 1)
        expect(crashLoopOf(d.state, "n1")).toEqual({ lastError: expect.stringContaining("fabric") });
    }
    // The first exit came from the running member; then at most crashLoopLimit launches in place.
    expect(launchesOf(d).filter((id) => id === "n1").length).toBe(cfg.crashLoopLimit);
    const gaps = launchTimes.slice(1).map((at, i) => at - (launchTimes[i] ?? 0));
    for (let i = 1; i < gaps.length; i++) expect(gaps[i]).toBeGreaterThanOrEqual(gaps[i - 1] ?? 0);
    expect(d.member("n1").lifecycle).toBe("fenced");
    const restart = d.state.healings.find((r) => r.kind === "restart" && r.memberId === "n1");
    expect(restart).toMatchObject({
      phase: "failed",
      reason: expect.stringMatching(/^crash-looping: 5 launches/),
    });
    // Once the fence is confirmed, a joiner replaces it on another server; n1 is never launched again.
    d.feed({ type: "fenced", memberId: "n1", atMs: t + 1000 });
    const joiner = d.state.members.find((m) => m.replaces === "n1");
    expect(joiner).toMatchObject({ lifecycle: "joining", mode: "join" });
    expect(joiner?.serverId).not.toBe(server);
    for (let u = t + 2000; u < t + 60_000; u += 500) d.feed({ type: "tick", atMs: u });
    expect(launchesOf(d).filter((id) => id === "n1").length).toBe(cfg.crashLoopLimit);
  });

  it("a joiner in a crash loop fails after the limit instead of being relaunched forever", () => {
    const d = new Driver().boot(0, "n2");
    d.feed({ type: "server-lost", serverId: d.member("n1").serverId, atMs: 100 });
    d.feed({ type: "fenced", memberId: "n1", atMs: 200 });
    const joiner = d.state.members.find((m) => m.replaces === "n1")?.id ?? "";
    let t = 300;
    for (let i = 0; i < 40; i++, t += 11_000) {
      if (d.member(joiner).lifecycle !== "joining") break;
      d.feed({ type: "tick", atMs: t });
      d.launched(joiner, t + 1);
      d.exited(joiner, t + 2, null, "");
    }
    expect(d.member(joiner).lifecycle).toBe("failed");
    expect(d.state.healings.find((r) => r.replacementId === joiner)?.reason).toMatch(/crash-looping/);
  });

  it("does not relaunch when the node's own log says the launch was refused, and reports the reason", () => {
    const d = new Driver().boot();
    const reason = "enclave launch refused: launch refused: bundle does not match the signed MRENCLAVE";
    expect(d.exited("n2", 100, reason)).toEqual([]);
    expect(d.latest()).toMatchObject({ kind: "restart", memberId: "n2", phase: "failed", reason });
    for (let t = 200; t < 5000; t += 250) d.feed({ type: "tick", atMs: t });
    expect(launchesOf(d)).toEqual([]);
    // An operator's explicit restart clears it.
    d.feed({ type: "restart-requested", memberId: "n2", atMs: 6000 });
    expect(launchesOf(d)).toEqual(["n2"]);
  });

  it("waits while healing is paused and restarts once resumed", () => {
    const d = new Driver().boot();
    d.feed({ type: "set-paused", paused: true, atMs: 0 });
    d.exited("n1", 10);
    d.exited("n2", 11);
    for (let t = 20; t < 3000; t += 250) d.feed({ type: "tick", atMs: t });
    expect(launchesOf(d)).toEqual([]);
    expect(d.state.healings.map((r) => [r.memberId, r.phase, r.reason])).toEqual([
      ["n1", "detected", "healing paused"],
      ["n2", "detected", "healing paused"],
    ]);
    d.feed({ type: "set-paused", paused: false, atMs: 3000 });
    expect(launchesOf(d).sort()).toEqual(["n1", "n2"]);
  });

  it("leaves a member that stops answering but still runs alone (paused or cut off is not crashed)", () => {
    const d = new Driver().boot();
    d.feed({ type: "node-status", memberId: "n3", status: null, atMs: 100 });
    for (let t = 200; t < 60_000; t += 250) d.feed({ type: "tick", atMs: t });
    expect(d.actions).toEqual([]);
    expect(d.state.healings).toEqual([]);
  });
});

describe("healing controller: lost server", () => {
  it("fences first, then replaces in an unused rack via a joiner that replaces the lost member", () => {
    const d = new Driver().boot(0, "n2");
    const lostServer = d.member("n1").serverId;
    expect(d.feed({ type: "server-lost", serverId: lostServer, atMs: 100 })).toEqual([
      { type: "fence", memberId: "n1" },
    ]);
    expect(d.member("n1").lifecycle).toBe("fenced");
    // Nothing is launched until the fence is confirmed.
    d.feed({ type: "tick", atMs: 200 });
    expect(launchesOf(d)).toEqual([]);
    expect(d.feed({ type: "fenced", memberId: "n1", atMs: 300 })).toEqual([
      { type: "launch", memberId: "n4" },
    ]);
    const n4 = d.member("n4");
    expect(n4).toMatchObject({
      lifecycle: "joining",
      mode: "join",
      replaces: "n1",
      rackId: "rack-4",
      peerAddress: "",
      joinPeers: ["n2", "n3"],
      minPeerSvn: 1,
    });
    const r = d.latest();
    expect(r).toMatchObject({ kind: "replace", memberId: "n1", replacementId: "n4", phase: "launching" });
    joinFully(d, "n4", "n1", 400);
    expect(phasesOf(d.record(r.id))).toEqual([
      "detected",
      "fenced",
      "launching",
      "attesting",
      "catching_up",
      "syncing_ownership",
      "ready",
    ]);
    expect(d.record(r.id).phases.map((p) => p.atMs)).toEqual([100, 300, 300, 400, 420, 430, 440]);
    expect(d.member("n4").lifecycle).toBe("active");
    expect(d.member("n1")).toMatchObject({ lifecycle: "fenced", replacedBy: "n4" });
    // The fenced member is never launched again, and nothing else happens.
    d.exited("n1", 500);
    for (let t = 600; t < 5000; t += 250) d.feed({ type: "tick", atMs: t });
    expect(d.actions).toEqual([
      { type: "fence", memberId: "n1" },
      { type: "launch", memberId: "n4" },
    ]);
  });

  it("is not ready while the pool still lists the replaced member, even when synced", () => {
    const d = new Driver().boot();
    d.feed({ type: "server-lost", serverId: d.member("n3").serverId, atMs: 0 });
    d.feed({ type: "fenced", memberId: "n3", atMs: 1 });
    d.launched("n4", 2);
    const withN3 = observation({
      members: ["n1", "n2", "n3", "n4"].map((id) => ({ id, role: "voter" })),
    });
    d.feed({ type: "node-status", memberId: "n4", status: withN3, atMs: 3 });
    expect(d.latest().phase).toBe("syncing_ownership");
    expect(d.member("n4").lifecycle).toBe("joining");
  });

  it("fails with a clear reason when no rack without a live member has a free server", () => {
    const d = new Driver(config(3, 1)).boot();
    d.feed({ type: "server-lost", serverId: "r1-s1", atMs: 0 });
    d.feed({ type: "fenced", memberId: "n1", atMs: 5 });
    expect(launchesOf(d)).toEqual([]);
    expect(d.latest()).toMatchObject({ kind: "replace", memberId: "n1", phase: "failed" });
    expect(d.latest().reason).toMatch(/no spare server.*rack-2, rack-3.*lost: r1-s1/);
    // No retry loop: a later tick tries nothing.
    d.feed({ type: "tick", atMs: 10_000 });
    expect(d.actions.filter((a) => a.type !== "fence")).toEqual([]);
  });

  it("uses the lost member's own rack (another server) only when no other rack is free", () => {
    const d = new Driver(config(3, 2)).boot();
    d.feed({ type: "server-lost", serverId: "r2-s1", atMs: 0 });
    d.feed({ type: "fenced", memberId: "n2", atMs: 1 });
    expect(d.member("n4")).toMatchObject({ serverId: "r2-s2", rackId: "rack-2" });
  });

  it("replaces two lost members one after the other, never two joiners at once", () => {
    const d = new Driver(config(5, 1)).boot();
    d.feed({ type: "server-lost", serverId: "r1-s1", atMs: 0 });
    d.feed({ type: "server-lost", serverId: "r2-s1", atMs: 1 });
    d.feed({ type: "fenced", memberId: "n1", atMs: 2 });
    d.feed({ type: "fenced", memberId: "n2", atMs: 3 });
    expect(launchesOf(d)).toEqual(["n4"]);
    expect(d.state.members.filter((m) => m.lifecycle === "joining").map((m) => m.id)).toEqual(["n4"]);
    joinFully(d, "n4", "n1", 10);
    expect(launchesOf(d)).toEqual(["n4", "n5"]);
    expect(d.member("n5")).toMatchObject({ replaces: "n2", joinPeers: ["n3", "n4"] });
    expect(new Set([d.member("n4").rackId, d.member("n5").rackId])).toEqual(new Set(["rack-4", "rack-5"]));
  });

  it("reports a joiner the pool refused at the attested handshake, and keeps the pool as it is", () => {
    const d = new Driver().boot();
    d.feed({ type: "server-lost", serverId: d.member("n2").serverId, atMs: 0 });
    d.feed({ type: "fenced", memberId: "n2", atMs: 1 });
    d.launched("n4", 2);
    d.status("n4", { membership: "joining", role: "learner", ownership: "pending", members: [] }, 3);
    const reason = "join refused: attestation, check signer";
    d.exited("n4", 500, reason, "");
    expect(d.latest()).toMatchObject({ replacementId: "n4", phase: "failed", reason });
    expect(d.member("n4").lifecycle).toBe("failed");
    for (let t = 600; t < 10_000; t += 250) d.feed({ type: "tick", atMs: t });
    expect(launchesOf(d)).toEqual(["n4"]);
    expect(d.state.members.filter((m) => m.lifecycle === "active").map((m) => m.id)).toEqual(["n1", "n3"]);
  });

  it("gives up on a joiner that never becomes a member (kills it) and restarts a crashed one", () => {
    const cfg = config(4, 2, { joinTimeoutMs: 1000 });
    const d = new Driver(cfg).boot();
    d.feed({ type: "server-lost", serverId: d.member("n1").serverId, atMs: 0 });
    d.feed({ type: "fenced", memberId: "n1", atMs: 0 });
    d.launched("n4", 0);
    d.exited("n4", 100, null, "SIGSEGV"); // a crash, not a refusal: relaunched after the backoff
    d.feed({ type: "tick", atMs: 100 + restartDelayMs(cfg, 1) });
    expect(launchesOf(d)).toEqual(["n4", "n4"]);
    d.launched("n4", 110);
    d.feed({ type: "tick", atMs: 15_000 });
    expect(d.latest().phase).toBe("attesting");
    d.feed({ type: "tick", atMs: 16_100 });
    expect(d.latest()).toMatchObject({ phase: "failed" });
    expect(d.latest().reason).toMatch(/n4 did not become a pool member within 16 s/);
    expect(d.actions.at(-1)).toEqual({ type: "stop", memberId: "n4", signal: "SIGKILL" });
  });
});

describe("healing controller: HFC restart", () => {
  function reload(d: Driver): Driver {
    const file = JSON.parse(JSON.stringify(toHealingFile(d.state, 7000)));
    const members = JSON.parse(JSON.stringify(d.state.members));
    const fabric = JSON.parse(JSON.stringify({ version: 1, lostServers: d.state.lostServers }));
    return new Driver(d.cfg, restoreHealingState(members, file, fabric));
  }

  it("resumes a replacement from the persisted state: adopts the running joiner, launches no second one", () => {
    const d = new Driver().boot();
    d.feed({ type: "server-lost", serverId: d.member("n3").serverId, atMs: 0 });
    d.feed({ type: "fenced", memberId: "n3", atMs: 1 });
    d.launched("n4", 2, 4242);
    const before = d.latest();
    const r = reload(d);
    // The shell re-confirms the fence and reports what still runs.
    r.feed({ type: "fenced", memberId: "n3", atMs: 100 });
    for (const id of ["n1", "n2"]) r.feed({ type: "adopted", memberId: id, pid: 1, atMs: 100 });
    r.feed({ type: "adopted", memberId: "n4", pid: 4242, atMs: 100 });
    expect(r.actions).toEqual([]);
    joinFully(r, "n4", "n3", 200);
    expect(r.record(before.id)).toMatchObject({ phase: "ready", replacementId: "n4" });
    expect(r.record(before.id).phases[0]).toEqual(before.phases[0]);
    expect(r.state.nextMemberNumber).toBe(5);
  });

  it("relaunches a joiner that was decided but never started, under the same id", () => {
    const d = new Driver().boot();
    d.feed({ type: "server-lost", serverId: d.member("n1").serverId, atMs: 0 });
    d.feed({ type: "fenced", memberId: "n1", atMs: 1 }); // launch n4 emitted; the HFC dies before it runs
    const r = reload(d);
    r.feed({ type: "fenced", memberId: "n1", atMs: 50 });
    r.feed({ type: "adopted", memberId: "n2", pid: 2, atMs: 50 });
    r.feed({ type: "adopted", memberId: "n3", pid: 3, atMs: 50 });
    r.feed({
      type: "process-exited",
      memberId: "n4",
      pid: 0,
      exit: { code: null, signal: null },
      refusal: null,
      atMs: 50,
    });
    expect(launchesOf(r)).toEqual(["n4"]);
    expect(r.state.members.map((m) => m.id)).toEqual(["n1", "n2", "n3", "n4"]);
  });

  it("keeps a paused restart paused across the restart, and completes it once resumed", () => {
    const d = new Driver().boot();
    d.feed({ type: "set-paused", paused: true, atMs: 0 });
    d.exited("n2", 10);
    const open = d.latest();
    const r = reload(d);
    r.feed({ type: "adopted", memberId: "n1", pid: 1, atMs: 100 });
    r.feed({ type: "adopted", memberId: "n3", pid: 3, atMs: 100 });
    r.feed({
      type: "process-exited",
      memberId: "n2",
      pid: 0,
      exit: { code: null, signal: null },
      refusal: null,
      atMs: 100,
    });
    expect(launchesOf(r)).toEqual([]);
    expect(r.state.healings.map((h) => h.id)).toEqual([open.id]);
    r.feed({ type: "set-paused", paused: false, atMs: 200 });
    expect(launchesOf(r)).toEqual(["n2"]);
    r.launched("n2", 210);
    r.status("n2", {}, 400);
    expect(r.record(open.id)).toMatchObject({ phase: "ready" });
    expect(r.record(open.id).phases[0]).toEqual({ phase: "detected", atMs: 10 });
  });

  it("opens a restart for a member that died while no HFC watched it", () => {
    const d = new Driver(config(), initialHealingState(new Driver().state.members));
    d.feed({ type: "adopted", memberId: "n1", pid: 1, atMs: 0 });
    d.feed({
      type: "process-exited",
      memberId: "n2",
      pid: 0,
      exit: { code: null, signal: null },
      refusal: null,
      atMs: 0,
    });
    expect(launchesOf(d)).toEqual(["n2"]);
    expect(d.latest()).toMatchObject({ kind: "restart", memberId: "n2", phase: "launching" });
  });
});

describe("healing controller: rolling upgrade", () => {
  const upgrade = {
    type: "upgrade-requested",
    bundleDir: "/bundle-v2",
    svn: 2,
    mrsigner: "bb".repeat(32),
  } as const;

  it("replaces members one at a time, secondaries first, retiring each old member once its joiner is ready", () => {
    const d = new Driver(config(3, 3)).boot(0, "n2");
    d.feed({ ...upgrade, atMs: 0 });
    expect(d.actions).toEqual([{ type: "launch", memberId: "n4" }]);
    expect(d.member("n4")).toMatchObject({ replaces: "n1", bundleDir: "/bundle-v2", svn: 2, minPeerSvn: 1 });
    expect(d.member("n4").joinPeers).toEqual(["n1", "n2", "n3"]);
    joinFully(d, "n4", "n1", 100);
    expect(d.member("n1").lifecycle).toBe("retired");
    expect(d.actions.slice(1)).toEqual([
      { type: "stop", memberId: "n1", signal: "SIGTERM" },
      { type: "launch", memberId: "n5" },
    ]);
    expect(d.member("n5").replaces).toBe("n3"); // n2 is the primary: last
    joinFully(d, "n5", "n3", 200);
    expect(d.member("n6").replaces).toBe("n2");
    joinFully(d, "n6", "n2", 300);
    expect(d.state.upgrade).toMatchObject({ state: "done", launched: ["n4", "n5", "n6"] });
    expect(d.state.members.filter((m) => m.lifecycle === "active").map((m) => [m.id, m.bundleDir])).toEqual([
      ["n4", "/bundle-v2"],
      ["n5", "/bundle-v2"],
      ["n6", "/bundle-v2"],
    ]);
    expect(d.state.healings.map((r) => [r.kind, r.memberId, r.replacementId, r.phase])).toEqual([
      ["upgrade", "n1", "n4", "ready"],
      ["upgrade", "n3", "n5", "ready"],
      ["upgrade", "n2", "n6", "ready"],
    ]);
  });

  it("stops at the first refused joiner and leaves every old member running", () => {
    const d = new Driver(config(3, 3)).boot();
    d.feed({ ...upgrade, atMs: 0 });
    d.launched("n4", 1);
    d.exited("n4", 50, "enclave launch refused: bundle changed after signing", "");
    expect(d.state.upgrade).toMatchObject({ state: "failed" });
    expect(d.state.upgrade?.reason).toMatch(/^n4: enclave launch refused/);
    for (let t = 100; t < 5000; t += 250) d.feed({ type: "tick", atMs: t });
    expect(d.actions).toEqual([{ type: "launch", memberId: "n4" }]);
    expect(d.state.members.filter((m) => m.lifecycle === "active").map((m) => m.id)).toEqual([
      "n1",
      "n2",
      "n3",
    ]);
  });

  it("moves a member that has a spare server first when the preferred one has none", () => {
    const cfg = config(3, 2, {
      inventory: [
        { id: "rack-1", servers: [{ id: "r1-s1" }] },
        { id: "rack-2", servers: [{ id: "r2-s1" }, { id: "r2-s2" }] },
        { id: "rack-3", servers: [{ id: "r3-s1" }, { id: "r3-s2" }] },
      ],
    });
    const d = new Driver(cfg).boot(0, "n3");
    d.feed({ ...upgrade, atMs: 0 });
    expect(d.member("n4")).toMatchObject({ replaces: "n2", serverId: "r2-s2" });
    expect(d.state.upgrade?.state).toBe("running");
  });

  it("fails the upgrade with the placement reason when no member can move", () => {
    const d = new Driver(config(3, 1)).boot();
    d.feed({ ...upgrade, atMs: 0 });
    expect(d.actions).toEqual([]);
    expect(d.state.upgrade).toMatchObject({ state: "failed" });
    expect(d.state.upgrade?.reason).toMatch(/no spare server/);
  });

  it("waits for a restart in place to finish before the next upgrade step", () => {
    const d = new Driver(config(3, 3)).boot();
    d.exited("n3", 0);
    d.feed({ ...upgrade, atMs: 1 });
    expect(launchesOf(d)).toEqual(["n3"]);
    d.launched("n3", 2);
    d.status("n3", {}, 3);
    expect(launchesOf(d)).toEqual(["n3", "n4"]);
  });
});
