// Lint rules that catch real bugs, type-aware (typescript-eslint with the project's tsconfig): above
// all promises that are dropped, passed where a callback's result is ignored, or awaited when they are
// not promises. Style is Prettier's job (`npm run format`), not the linter's.
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/**", "build/**", "data/**", "jupyter/**", "src/plots/explorerPage.js", "**/*.mjs"] },
  {
    files: ["src/**/*.ts", "test/**/*.ts", "bench/**/*.ts"],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { "@typescript-eslint": tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: "off" },
    rules: {
      "@typescript-eslint/no-floating-promises": [
        "error",
        // node:test runs each test() it is given; the promise it returns is for nesting only.
        {
          allowForKnownSafeCalls: [
            { from: "package", name: ["test", "it", "describe", "suite"], package: "node:test" },
          ],
        },
      ],
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/await-thenable": "error",
      "@typescript-eslint/require-await": "off",
      "@typescript-eslint/no-for-in-array": "error",
      "@typescript-eslint/no-unnecessary-type-assertion": "off",
      "@typescript-eslint/only-throw-error": "error",
      "@typescript-eslint/prefer-promise-reject-errors": "error",
      "@typescript-eslint/return-await": ["error", "in-try-catch"],
      "no-unsafe-finally": "error",
      "no-self-compare": "error",
      "no-dupe-keys": "error",
      "no-unreachable": "error",
    },
  },
);
