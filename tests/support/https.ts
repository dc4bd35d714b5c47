import { request } from "node:https";

export interface ApiTarget {
  server: string;
  token: string;
  ca: string;
}

/** A GET against the API server with the admin token; resolves with the status and the body. */
export function apiGet(target: ApiTarget, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, target.server),
      { method: "GET", ca: target.ca, headers: { authorization: `Bearer ${target.token}` }, timeout: 5_000 },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (body += chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("timeout", () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on("error", reject);
    req.end();
  });
}
