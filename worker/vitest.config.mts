import { readFileSync } from "node:fs";
import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

// A throwaway key (fakes/keys/README.md) standing in for the service account in tests.
const testKey = readFileSync(new URL("../fakes/keys/test_private.pem", import.meta.url), "utf8");

export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: "./wrangler.jsonc" },
      miniflare: {
        bindings: {
          ALLOWED_ORIGINS: "https://www.acme.example,https://app.acme.example",
          REDIRECT_HOSTS: "www.acme.example",
          BQ_PROJECT: "test-proj",
          BQ_DATASET: "oie",
          // Nothing listens here: tests drive the consumer with their own fetch.
          BQ_BASE_URL: "http://127.0.0.1:9",
          PUBSUB_BASE_URL: "http://127.0.0.1:9",
          PUBSUB_TOPIC: "",
          ADMIN_TOKEN: "test-admin-token",
          EVENT_SIGNING_SECRET: "test-signing-secret",
          GCP_SERVICE_ACCOUNT: JSON.stringify({
            client_email: "oie-ingest@test-proj.iam.gserviceaccount.com",
            private_key: testKey,
            token_uri: "https://oauth2.test/token",
          }),
        },
      },
    }),
  ],
  test: {
    include: ["test/**/*.test.ts"],
  },
});
