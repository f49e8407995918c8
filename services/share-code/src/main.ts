import { shareCode } from "./service.js";

await shareCode.main(import.meta.url);
