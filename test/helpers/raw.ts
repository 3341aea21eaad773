import net from 'node:net';

/** Writes raw bytes (parts `gapMs` apart) to 127.0.0.1:`port` and returns everything answered until it closes (bounded). */
export function rawExchange(port: number, payload: string | string[], gapMs = 0, timeoutMs = 5000): Promise<{ text: string; elapsedMs: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.on('data', (c) => (text += c.toString()));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, elapsedMs: Date.now() - started });
    });
    const parts = Array.isArray(payload) ? payload : [payload];
    let i = 0;
    const next = () => {
      if (i >= parts.length || socket.destroyed) return;
      socket.write(parts[i++]!);
      if (gapMs > 0) setTimeout(next, gapMs);
      else next();
    };
    socket.on('connect', next);
  });
}

/** The JSON body of a raw HTTP answer. */
export function jsonBody(text: string): Record<string, unknown> {
  return JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;
}
