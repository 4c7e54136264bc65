/**
 * @module Answering a WebSocket's close from a Durable Object's
 * webSocketClose. The code received may be one that must never be sent (1005
 * "no status", 1006 "abnormal": the peer vanished, 1015 TLS): close() throws
 * on those, and an exception there is an uncaught error in the object.
 */

/** The code to answer a received close code with. */
export function echoCloseCode(code: number): number {
  const sendable = code === 1000 || (code >= 1001 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
  return sendable ? code : 1000;
}

export function answerClose(ws: WebSocket, code: number): void {
  try {
    ws.close(echoCloseCode(code), "closing");
  } catch {
    // Already closed on our side: nothing left to answer.
  }
}
