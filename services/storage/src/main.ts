import { storage } from "./service.js";

await storage.main(import.meta.url);
