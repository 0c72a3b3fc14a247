/** Jest runs the TypeScript tests through ts-jest; the templates are synthesized in-process. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { isolatedModules: false }] },
  testTimeout: 60000,
};
