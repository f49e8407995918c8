// `npm run bench`: starts (or finds) NATS and PostgreSQL like the tests do, runs every benchmark, prints figures.
import { nats } from "../support/nats.ts";
import { postgres } from "../support/postgres.ts";
import { doorFairBench } from "./fair/door.bench.ts";
import { downloadsFairBench } from "./fair/downloads.bench.ts";
import { factHopFairBench } from "./fair/fact-hop.bench.ts";
import { likesFairBench } from "./fair/likes.bench.ts";
import { rssGrowthFairBench } from "./fair/rss.bench.ts";
import { startupFairBench } from "./fair/startup.bench.ts";
import { urlsFairBench } from "./fair/urls.bench.ts";
import { imagesBench } from "./images.bench.ts";
import { commentsBench } from "./social.bench.ts";

const only = process.argv[2];
const natsServer = await nats();
const pg = await postgres();
try {
  console.log(`# snapmesh benchmarks (${new Date().toISOString()}, node ${process.version})`);
  const suites: Record<string, () => Promise<void>> = {
    likes: () => likesFairBench(natsServer.url, pg.url),
    downloads: () => downloadsFairBench(natsServer.url, pg.url),
    urls: () => urlsFairBench(natsServer.url, pg.url),
    door: () => doorFairBench(natsServer.url, pg.url),
    "fact-hop": () => factHopFairBench(natsServer.url, pg.url),
    startup: () => startupFairBench(natsServer.url, pg.url),
    "rss-growth": () => rssGrowthFairBench(natsServer.url, pg.url),
    comments: () => commentsBench(natsServer.url, pg.url),
    // Needs root, buildah and the built images: run by name only.
    images: () => imagesBench(natsServer.url, pg.url),
  };
  if (only && !(only in suites)) throw new Error(`no benchmark '${only}'; one of ${Object.keys(suites).join(", ")}`);
  for (const [name, run] of Object.entries(suites)) {
    if (only ? only === name : name !== "images") await run();
  }
} finally {
  await natsServer.stop();
  await pg.stop();
}
process.exit(0);
