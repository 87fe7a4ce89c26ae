package com.s3bguploader.test

import android.app.Application
import com.s3bguploader.AndroidTrust
import com.s3bguploader.S3BgUploaderRuntime
import kotlinx.coroutines.runBlocking
import org.junit.After
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.annotation.Config
import java.io.File
import java.nio.file.Files
import java.security.KeyStore
import java.security.cert.CertificateFactory
import java.util.concurrent.TimeUnit

/** `https-harness`: backend and store over HTTPS behind a private CA (its PEM written to a file). */
class HttpsHarness : AutoCloseable {
    val url: String
    private val storeDir: File
    val caPem: String
    private val process: Process

    init {
        val bin = System.getProperty("s3bgu.httpsHarness")?.takeIf { it.isNotEmpty() } ?: error("-Ds3bgu.httpsHarness is not set")
        val ca = File(Files.createTempDirectory("s3bgu-android-tls").toFile(), "ca.pem")
        process = ProcessBuilder(bin, ca.path).redirectError(ProcessBuilder.Redirect.DISCARD).start()
        val out = process.inputStream.bufferedReader()
        url = out.readLine()?.removePrefix("backend ")?.trim() ?: error("https-harness exited: ${process.waitFor()}")
        storeDir = File(out.readLine()!!.removePrefix("store ").trim())
        caPem = ca.readText()
    }

    fun objectBytes(key: String): ByteArray = File(storeDir, "uploads/$key").readBytes()

    override fun close() {
        process.outputStream.close()
        if (!process.waitFor(5, TimeUnit.SECONDS)) process.destroyForcibly()
    }
}

@RunWith(RobolectricTestRunner::class)
class TlsTest {
    private lateinit var app: Application

    @Before
    fun setUp() {
        TestSetup.before()
        // On screen: the engine sends in the foreground.
        Screen.show()
        app = RuntimeEnvironment.getApplication()
    }

    @After
    fun tearDown() = TestSetup.after()

    private fun settle(json: String): String {
        val id = Regex("\"id\":(\\d+)").find(json)!!.groupValues[1].toDouble()
        val engine = engineOf(app)
        return eventually("the upload to settle") {
            runBlocking { engine.uploadsJson(id, null) }.takeIf { Regex("\"state\":\"(COMPLETED|FAILED)\"").containsMatchIn(it) }
        }
    }

    @Test
    fun uploadsTrustWhatThePlatformTrustManagerTrusts(): Unit = HttpsHarness().use { h ->
        // The runtime installs the platform's trust manager when it opens the
        // engine; here that store does not know the harness's private CA.
        val engine = engineOf(app)
        val config = """{"startUploadUrl":"${h.url}/startUpload","uploadUrlsUrl":"${h.url}/getUploadUrls",""" +
            """"completeUrl":"${h.url}/complete","retry":{"maxAttempts":1,"baseDelayMs":10,"maxDelayMs":20}}"""
        runBlocking { engine.setConfigJson(config) }
        engine.setNetworkState(true, false)
        val refused = settle(runBlocking { engine.uploadFileJson(randomFile(app.cacheDir, "t1.bin", 2000).path, "tls", null, "{}") })
        assertTrue(refused, refused.contains("\"state\":\"FAILED\""))
        assertTrue(refused, refused.contains("not trusted"))

        // A device store that holds the CA (as a user CA allowed by the
        // network security config would): the JVM's default store is what
        // the platform's TrustManagerFactory reads here. A new process opens
        // the engine again and installs the platform's trust manager.
        val ks = KeyStore.getInstance("PKCS12").apply { load(null, null) }
        ks.setCertificateEntry("private-ca", CertificateFactory.getInstance("X.509").generateCertificate(h.caPem.byteInputStream()))
        val store = File.createTempFile("device-store", ".p12").also { f -> f.outputStream().use { ks.store(it, "pw".toCharArray()) } }
        val saved = listOf("javax.net.ssl.trustStore", "javax.net.ssl.trustStorePassword", "javax.net.ssl.trustStoreType").associateWith { System.getProperty(it) }
        System.setProperty("javax.net.ssl.trustStore", store.path)
        System.setProperty("javax.net.ssl.trustStorePassword", "pw")
        System.setProperty("javax.net.ssl.trustStoreType", "PKCS12")
        try {
            S3BgUploaderRuntime.resetForTests()
            Screen.show()
            val reopened = engineOf(app)
            reopened.setNetworkState(true, false)
            checkTrusted(reopened, h)
        } finally {
            saved.forEach { (k, v) -> if (v == null) System.clearProperty(k) else System.setProperty(k, v) }
        }
    }

    private fun checkTrusted(engine: com.s3bguploader.core.UploadEngine, h: HttpsHarness) {
        val f = randomFile(app.cacheDir, "t2.bin", 5 * MIB + 77)
        val done = settle(runBlocking { engine.uploadFileJson(f.path, "tls", null, "{}") })
        assertTrue(done, done.contains("\"state\":\"COMPLETED\""))
        assertArrayEquals(f.readBytes(), h.objectBytes(Regex("\"key\":\"([^\"]+)\"").find(done)!!.groupValues[1]))
    }

    @Test
    fun aTrustManagerWithoutHostChecksStillDecides() {
        // The JVM's trust manager has no host-aware check: AndroidTrust falls
        // back to the plain one (the engine verifies the host name itself).
        val refusing = AndroidTrust.fromPlatform(KeyStore.getInstance(KeyStore.getDefaultType()).apply { load(null, null) })
        try {
            refusing.checkServerTrusted(listOf(ByteArray(3)), "RSA", "example.com")
            throw AssertionError("garbage was trusted")
        } catch (e: com.s3bguploader.core.TrustException.Untrusted) {
            assertTrue(e.reason, e.reason.contains("example.com"))
        }
    }
}
