import { shareCode } from "./service.js";

// Not awaited: the image runs this bundled as a script (CommonJS), where there is no top-level await.
void shareCode.main(import.meta.url);
