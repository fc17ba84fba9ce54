#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm install` (prepare → tsc -b).
import { main } from "../dist/cli/main.js";

// Output piped into a reader that stops reading (`| head`, a pager that quits) ends the run quietly, as
// SIGPIPE would, instead of an EPIPE stack trace. A command that must clean up first (chaos run tears its
// pool down) listens for SIGINT and is told that way.
let readerGone = false;
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (e) => {
    if (e.code !== "EPIPE") throw e;
    if (readerGone) return;
    readerGone = true;
    if (process.listenerCount("SIGINT") > 0) process.emit("SIGINT", "SIGINT");
    else process.exit(process.exitCode ?? 0);
  });
}

process.exitCode = await main(process.argv);
