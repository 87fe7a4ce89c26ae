package com.s3bguploader.core.test

import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import java.io.File

/**
 * The committed bindings (Kotlin in android/src/main/java/com/s3bguploader/core,
 * Swift in ios/generated) must be exactly
 * what uniffi-bindgen generates from the current library: otherwise the Rust
 * API changed without `bindings/generate.sh` being run and committed.
 */
class BindingsUpToDateTest {
    private fun tree(root: File): Map<String, String> =
        root.walkTopDown().filter { it.isFile }
            .associate { it.relativeTo(root).path to it.readText() }

    private fun check(language: String, committedDir: String, generatedDir: String) {
        val root = File(System.getProperty("s3bgu.bindings.committed"))
        val committed = File(root, committedDir)
        val generated = File(System.getProperty("s3bgu.bindings.generated"), generatedDir)
        val expected = tree(generated)
        assertTrue("nothing generated for $language", expected.isNotEmpty())
        val actual = tree(committed)
        assertEquals(
            "files in $committedDir differ from the generated ones: run bindings/generate.sh",
            expected.keys, actual.keys,
        )
        for ((path, text) in expected) {
            assertTrue(
                "$committedDir/$path is out of date with the Rust API: run bindings/generate.sh and commit",
                actual[path] == text,
            )
        }
    }

    @Test fun kotlinBindingsAreUpToDate() =
        check("kotlin", "android/src/main/java/com/s3bguploader/core", "kotlin/com/s3bguploader/core")

    @Test fun swiftBindingsAreUpToDate() = check("swift", "ios/generated", "swift")
}
