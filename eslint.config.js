// @ts-check
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  globalIgnores(['dist/', 'node_modules/', 'coverage/', 'bench/.work/', '.scratch/', 'reports/', '.stryker-tmp/']),

  // Plain JavaScript (this file): the recommended rules, without type information.
  {
    files: ['**/*.{js,mjs,cjs}'],
    extends: [js.configs.recommended],
  },

  // The project's TypeScript, type-checked through tsconfig.json.
  {
    files: [
      '{src,test,bench,scripts}/**/*.{ts,mts,cts}',
      'vitest.config.ts',
      'vitest.faults.config.ts',
      'vitest.stryker.config.ts',
    ],
    extends: [js.configs.recommended, tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // A promise nobody awaits loses its rejection: an unhandled error or a half-done fill.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      // Pairs with verbatimModuleSyntax: type-only imports are erased, value imports kept.
      '@typescript-eslint/consistent-type-imports': ['error', { disallowTypeAnnotations: false }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          args: 'after-used',
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
      // An async function without await is fine: it still returns a promise, which an
      // interface (ImageSource, ImageSink) may require.
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      // Protocol code matches control characters on purpose (header values, printable previews).
      'no-control-regex': 'off',
    },
  },
);
