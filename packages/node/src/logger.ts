/**
 * JSON-lines logging (pino) to stdout; the HFC appends it to <run>/nodes/<id>/node.log.
 * Synchronous writes, so the last lines before an exit (or a crash) are not lost.
 * Nothing secret is ever passed to the logger: key ids, fingerprints, phases, error
 * codes and messages only (HsmPoolError messages never carry key material).
 */
import { type Logger, pino } from "pino";

export function createLogger(nodeId: string, level = process.env.HSMPOOL_LOG_LEVEL ?? "info"): Logger {
  return pino({ level, base: { nodeId, pid: process.pid } }, pino.destination({ fd: 1, sync: true }));
}
