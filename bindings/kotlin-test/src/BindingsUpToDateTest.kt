package com.s3bguploader.core.test

import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import java.io.File

/**
 * The committed bindings (bindings/kotlin, bindings/swift) must be exactly
 * what uniffi-bindgen generates from the current library: otherwise the Rust
 * API changed without `bindings/generate.sh` being run and committed.
 */
class BindingsUpToDateTest {
    private fun tree(root: File): Map<String, String> =
        root.walkTopDown().filter { it.isFile }
            .associate { it.relativeTo(root).path to it.readText() }

    private fun check(language: String) {
        val committed = File(System.getProperty("s3bgu.bindings.committed"), language)
        val generated = File(System.getProperty("s3bgu.bindings.generated"), language)
        val expected = tree(generated)
        assertTrue("nothing generated for $language", expected.isNotEmpty())
        val actual = tree(committed)
        assertEquals(
            "files in bindings/$language differ from the generated ones: run bindings/generate.sh",
            expected.keys, actual.keys,
        )
        for ((path, text) in expected) {
            assertTrue(
                "bindings/$language/$path is out of date with the Rust API: run bindings/generate.sh and commit",
                actual[path] == text,
            )
        }
    }

    @Test fun kotlinBindingsAreUpToDate() = check("kotlin")

    @Test fun swiftBindingsAreUpToDate() = check("swift")
}
