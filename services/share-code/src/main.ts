import { shareCode } from "./service.js";

await shareCode.main();
