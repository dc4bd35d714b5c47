/** The Redis options `cadent controller` and `cadent worker` share: flags, and the password file. */
import { readFile } from "node:fs/promises";

/** `--redis-url` and `--redis-password-file`, as both verbs' flag tables spell them. */
export const REDIS_FLAGS = {
  redisUrl: {
    flag: "--redis-url",
    value: "<url>",
    env: "REDIS_URL",
    description: "Redis broker and result backend, redis://[:password@]host:port/db or rediss:// for TLS",
    defaultValue: "redis://127.0.0.1:6379/0",
    secret: true,
  },
  redisPasswordFile: {
    flag: "--redis-password-file",
    value: "<path>",
    env: "REDIS_PASSWORD_FILE",
    description: "read the Redis password from this file (e.g. a mounted Secret); overrides the URL's",
  },
} as const;

const passwordFileFlag = `${REDIS_FLAGS.redisPasswordFile.flag} (env ${REDIS_FLAGS.redisPasswordFile.env})`;

/**
 * The Redis password: the content of `redisPasswordFile` (one trailing newline dropped) when
 * given, else the URL's password, else undefined. Never logs or repeats the password.
 */
export async function loadRedisPassword(
  options: { redisUrl: string; redisPasswordFile: string | undefined },
  read: (path: string) => Promise<string> = (path) => readFile(path, "utf8"),
): Promise<string | undefined> {
  const file = options.redisPasswordFile;
  if (file === undefined) {
    const password = new URL(options.redisUrl).password;
    return password === "" ? undefined : decodeURIComponent(password);
  }
  let content: string;
  try {
    content = await read(file);
  } catch (err) {
    throw new Error(
      `cannot read the Redis password from ${file} (${passwordFileFlag}): ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
  const password = content.replace(/\r?\n$/, "");
  if (password === "") {
    throw new Error(`the Redis password file ${file} (${passwordFileFlag}) is empty`);
  }
  return password;
}
