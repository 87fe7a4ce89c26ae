package com.s3bguploader.test

import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Test
import org.w3c.dom.Element
import java.io.File
import javax.xml.parsers.DocumentBuilderFactory

private val root = File(System.getProperty("s3bgu.repo.root") ?: error("-Ds3bgu.repo.root is not set"))
private const val ANDROID_NS = "http://schemas.android.com/apk/res/android"

/** The library's manifest and Gradle files, read as files (Gradle cannot run here). */
class ManifestTest {
    private val manifest: Element = DocumentBuilderFactory.newInstance().apply { isNamespaceAware = true }
        .newDocumentBuilder().parse(File(root, "android/src/main/AndroidManifest.xml")).documentElement

    private fun elements(tag: String): List<Element> =
        manifest.getElementsByTagName(tag).let { list -> (0 until list.length).map { list.item(it) as Element } }

    private fun Element.android(attr: String): String = getAttributeNS(ANDROID_NS, attr)

    @Test
    fun manifestAsksOnlyForWhatTheLibraryNeeds() {
        val permissions = elements("uses-permission").map { it.android("name") }.toSet()
        assertEquals(
            setOf(
                "android.permission.INTERNET",
                "android.permission.ACCESS_NETWORK_STATE",
                "android.permission.RUN_USER_INITIATED_JOBS",
                "android.permission.POST_NOTIFICATIONS",
                "android.permission.RECEIVE_BOOT_COMPLETED",
            ),
            permissions,
        )
        // Merged into every app, these would force a Play Console declaration.
        assertFalse(permissions.any { it.startsWith("android.permission.FOREGROUND_SERVICE") })
        assertTrue(elements("service").none { it.hasAttributeNS(ANDROID_NS, "foregroundServiceType") })
        assertTrue(elements("service").none { it.android("name").endsWith("UploadForegroundService") })
    }

    @Test
    fun jobServiceAndBootReceiverAreDeclaredPrivately() {
        val job = elements("service").single { it.android("name") == "com.s3bguploader.UploadJobService" }
        assertEquals("android.permission.BIND_JOB_SERVICE", job.android("permission"))
        assertEquals("false", job.android("exported"))
        val boot = elements("receiver").single { it.android("name") == "com.s3bguploader.BootReceiver" }
        assertEquals("false", boot.android("exported"))
        // Off until work is queued (the library switches it on and off).
        assertEquals("false", boot.android("enabled"))
        val actions = boot.getElementsByTagName("action").let { l -> (0 until l.length).map { (l.item(it) as Element).android("name") } }
        assertTrue(actions.contains("android.intent.action.BOOT_COMPLETED"))
    }

    @Test
    fun gradleFilesCarryTheLibrarySettings() {
        val gradle = File(root, "android/build.gradle").readText()
        for (needle in listOf(
            "apply plugin: \"com.android.library\"",
            "apply plugin: \"com.facebook.react\"",
            "namespace = \"com.s3bguploader\"",
            // No second AGP inside an app; kotlin-android only where AGP 9 lets it.
            "if (project == rootProject) {",
            "apply plugin: \"kotlin-android\"",
            "com.android.built-in-kotlin",
            "compileSdkVersion\", 36)",
            "minSdkVersion\", 24)",
            "JavaVersion.VERSION_17",
            "net.java.dev.jna:jna:5.19.1@aar",
            "consumerProguardFiles \"consumer-rules.pro\"",
            "react-native-s3-bg-uploader: the engine binaries are missing (android/src/main/jniLibs). " +
                "Run scripts/build-android.sh (needs Rust + cargo-ndk + the NDK), or install the package from npm, which ships them.",
        )) {
            assertTrue("build.gradle lacks: $needle", gradle.contains(needle))
        }
        val rules = File(root, "android/consumer-rules.pro").readText()
        assertTrue(rules.contains("-keep class com.sun.jna.** { *; }"))
        assertTrue(rules.contains("-keep class com.s3bguploader.core.** { *; }"))
        // JNA reads @Structure.FieldOrder by reflection.
        assertTrue(rules.contains("-keepattributes RuntimeVisibleAnnotations"))
    }
}
