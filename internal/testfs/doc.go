// Package testfs has file-system fixtures for tests: FullDir, a directory
// in which no new file can be written (Linux only).
package testfs
