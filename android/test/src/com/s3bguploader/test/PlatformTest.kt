package com.s3bguploader.test

import android.app.Application
import android.content.ContentProvider
import android.content.ContentValues
import android.content.Intent
import android.content.IntentFilter
import android.content.pm.ServiceInfo
import android.database.Cursor
import android.net.ConnectivityManager
import android.net.NetworkCapabilities
import android.net.Uri
import android.os.Build
import android.os.ParcelFileDescriptor
import com.facebook.react.bridge.ReadableMap
import com.s3bguploader.BootReceiver
import com.s3bguploader.ContentFileOpener
import com.s3bguploader.S3BgUploaderModule
import com.s3bguploader.S3BgUploaderRuntime
import com.s3bguploader.UploadForegroundService
import com.s3bguploader.UploadJobs
import com.s3bguploader.UploadNotifications
import com.s3bguploader.core.IdleReason
import kotlinx.coroutines.runBlocking
import org.junit.After
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config
import org.robolectric.shadows.ShadowNetwork
import org.robolectric.shadows.ShadowNetworkCapabilities
import java.io.File
import java.io.FileNotFoundException

/** A document provider as a picker's would be: files by name, one revoked, one a pipe. */
class TestFilesProvider : ContentProvider() {
    override fun onCreate() = true

    override fun openFile(uri: Uri, mode: String): ParcelFileDescriptor {
        val name = uri.lastPathSegment ?: throw FileNotFoundException("no name")
        if (name.startsWith("revoked")) throw SecurityException("Permission Denial: the grant for $name was revoked")
        if (name.startsWith("pipe")) {
            // A real pipe, as a provider that streams its content hands out.
            val fds = IntArray(2)
            check(LibC.INSTANCE.pipe(fds) == 0)
            try {
                return ParcelFileDescriptor.open(File("/proc/self/fd/${fds[0]}"), ParcelFileDescriptor.MODE_READ_ONLY)
            } finally {
                LibC.INSTANCE.close(fds[0])
                LibC.INSTANCE.close(fds[1])
            }
        }
        val f = File(root, name)
        if (!f.exists()) throw FileNotFoundException("$name is gone")
        return ParcelFileDescriptor.open(f, ParcelFileDescriptor.MODE_READ_ONLY)
    }

    override fun query(uri: Uri, p: Array<out String>?, s: String?, a: Array<out String>?, o: String?): Cursor? = null
    override fun getType(uri: Uri): String = "application/octet-stream"
    override fun insert(uri: Uri, values: ContentValues?): Uri? = null
    override fun delete(uri: Uri, s: String?, a: Array<out String>?) = 0
    override fun update(uri: Uri, v: ContentValues?, s: String?, a: Array<out String>?) = 0

    companion object {
        const val AUTHORITY = "com.s3bguploader.test.files"
        lateinit var root: File
        fun uri(name: String) = "content://$AUTHORITY/document/$name"
    }
}

@RunWith(RobolectricTestRunner::class)
@Config(shadows = [DetachableParcelFileDescriptor::class, TestJobScheduler::class])
class PlatformTest {
    private lateinit var app: Application

    @Before
    fun setUp() {
        TestSetup.before()
        app = RuntimeEnvironment.getApplication()
    }

    @After
    fun tearDown() = TestSetup.after()

    private fun settled(id: Double): String = eventually("upload $id to settle") {
        runBlocking { engineOf(app).uploadsJson(id, null) }
            .takeIf { Regex("\"state\":\"(COMPLETED|FAILED|CANCELLED)\"").containsMatchIn(it) }
    }

    private fun idOf(json: String) = Regex("\"id\":(\\d+)").find(json)!!.groupValues[1].toDouble()

    @Test
    fun aContentUriFromAProviderUploadsByteIdenticalThroughTheModule() {
        TestFilesProvider.root = File(app.filesDir, "provider").also { it.mkdirs() }
        Robolectric.setupContentProvider(TestFilesProvider::class.java, TestFilesProvider.AUTHORITY)
        val f = randomFile(TestFilesProvider.root, "video.mp4", 11 * MIB + 3)
        val module = S3BgUploaderModule(TestReactContext(app)).also { it.eventSink = { _, _ -> } }.also { Screen.show() }
        module.initialize()
        try {
            assertNull(TestPromise().also { module.setConfig(Backend.configJson(), it) }.resolved())
            val added = TestPromise().also { module.uploadFile(TestFilesProvider.uri("video.mp4"), "picked", null, "{}", it) }.resolved() as ReadableMap
            assertEquals(TestFilesProvider.uri("video.mp4"), added.str("path"))
            assertEquals("video.mp4", added.str("fileName"))
            assertEquals(f.length().toDouble(), added.num("size"), 0.0)
            // The picker's grant is kept across restarts.
            assertTrue(
                app.contentResolver.persistedUriPermissions.toString(),
                app.contentResolver.persistedUriPermissions.any { it.uri == Uri.parse(TestFilesProvider.uri("video.mp4")) && it.isReadPermission },
            )
            val done = settled(added.num("id"))
            assertTrue(done, done.contains("\"state\":\"COMPLETED\""))
            val key = Regex("\"key\":\"([^\"]+)\"").find(done)!!.groupValues[1]
            assertArrayEquals(f.readBytes(), Backend.objectBytes(key))

            // A revoked grant and a pipe fail that upload with the engine's clear error.
            val revoked = TestPromise().also { module.uploadFile(TestFilesProvider.uri("revoked.bin"), "picked", null, "{}", it) }.rejection()
            assertEquals("file_unreadable", revoked.first)
            val pipe = TestPromise().also { module.uploadFile(TestFilesProvider.uri("pipe.bin"), "picked", null, "{}", it) }.rejection()
            assertEquals("file_unreadable", pipe.first)
            val gone = TestPromise().also { module.uploadFile(TestFilesProvider.uri("missing.bin"), "picked", null, "{}", it) }.rejection()
            assertEquals("file_not_found", gone.first)

            // Forgotten, with no other upload of the URI left: the module
            // gives its grant back (an app holds a few hundred at most).
            assertEquals(1.0, TestPromise().also { module.forget(added.num("id"), null, it) }.resolved() as Double, 0.0)
            assertTrue(app.contentResolver.persistedUriPermissions.none { it.uri == Uri.parse(TestFilesProvider.uri("video.mp4")) })
            assertFalse("nothing left to give back", ContentFileOpener.releasePersistablePermission(app.contentResolver, TestFilesProvider.uri("video.mp4")))
        } finally {
            module.invalidate()
        }
    }

    private fun capabilities(vararg caps: Int): NetworkCapabilities {
        val nc = ShadowNetworkCapabilities.newInstance()
        caps.forEach { shadowOf(nc).addCapability(it) }
        return nc
    }

    @Test
    fun theNetworkCallbackHoldsAndReleasesUnmeteredOnlyUploads() {
        Screen.show()
        val engine = engineOf(app)
        val cm = app.getSystemService(ConnectivityManager::class.java)!!
        val callbacks = shadowOf(cm).networkCallbacks
        assertEquals("one default-network callback", 1, callbacks.size)
        val callback = callbacks.first()
        val network = ShadowNetwork.newInstance(100)
        runBlocking { engine.setConfigJson(Backend.configJson(""","network":"unmetered"""")) }

        // Mobile data: metered.
        callback.onCapabilitiesChanged(
            network,
            capabilities(NetworkCapabilities.NET_CAPABILITY_INTERNET, NetworkCapabilities.NET_CAPABILITY_VALIDATED),
        )
        var status = runBlocking { engine.status() }
        assertTrue(status.online)
        assertTrue(status.metered)
        assertFalse(status.networkAllowed)
        val f = randomFile(app.cacheDir, "wifi.bin", 5 * MIB + 9)
        val id = idOf(runBlocking { engine.uploadFileJson(f.path, "wifi", null, "{}") })
        assertEquals(IdleReason.WAITING_FOR_NETWORK, runBlocking { engine.runUntilIdle() })
        assertTrue(runBlocking { engine.uploadsJson(id, null) }.contains("\"uploadedBytes\":0"))

        // Lost: offline.
        callback.onLost(network)
        status = runBlocking { engine.status() }
        assertFalse(status.online)

        // Wi-Fi, but Android blocks the app's network (a cached process on
        // Android 15, Doze): offline, the upload waits and keeps its retries.
        val wifi = ShadowNetwork.newInstance(101)
        callback.onAvailable(wifi)
        callback.onCapabilitiesChanged(
            wifi,
            capabilities(
                NetworkCapabilities.NET_CAPABILITY_INTERNET,
                NetworkCapabilities.NET_CAPABILITY_VALIDATED,
                NetworkCapabilities.NET_CAPABILITY_NOT_METERED,
            ),
        )
        // Blocked for the app (API 29+ tells): offline, the upload waits.
        if (android.os.Build.VERSION.SDK_INT >= 29) {
            callback.onBlockedStatusChanged(wifi, true)
            status = runBlocking { engine.status() }
            assertFalse("blocked is offline", status.online)
            assertFalse(status.networkAllowed)
            assertEquals(IdleReason.WAITING_FOR_NETWORK, runBlocking { engine.runUntilIdle() })
            val held = runBlocking { engine.uploadsJson(id, null) }
            assertTrue(held, held.contains("\"uploadedBytes\":0"))
            assertFalse(held, held.contains("\"state\":\"FAILED\""))

            // Unblocked: unmetered and online, the upload goes.
            callback.onBlockedStatusChanged(wifi, false)
        }
        status = runBlocking { engine.status() }
        assertTrue(status.online)
        assertTrue(status.networkAllowed)
        assertFalse(status.metered)
        assertTrue(settled(id).contains("\"state\":\"COMPLETED\""))
    }

    @Test
    fun theForegroundServiceRunsInForegroundAndItsTimeoutStopsCleanly(): Unit = GatedBackend().use { gated ->
        val engine = engineOf(app)
        runBlocking { engine.setConfigJson(gated.configJson()) }
        engine.setNetworkState(true, false)
        runBlocking { engine.uploadFileJson(randomFile(app.cacheDir, "fgs.bin", 5 * MIB + 2).path, "fgs", null, "{}") }

        val controller = Robolectric.buildService(UploadForegroundService::class.java).create().startCommand(0, 1)
        val service = controller.get()
        val shadow = shadowOf(service)
        assertNotNull("started in the foreground", shadow.lastForegroundNotification)
        assertEquals(UploadNotifications.NOTIFICATION_ID, shadow.lastForegroundNotificationId)
        // Service types exist from API 29.
        if (Build.VERSION.SDK_INT >= 29) assertEquals(ServiceInfo.FOREGROUND_SERVICE_TYPE_DATA_SYNC, service.foregroundServiceType)
        eventually("a backend call in flight") { gated.waiting.takeIf { it >= 1 } }

        // Android 15's time limit for dataSync: answered at once.
        service.onTimeout(1, ServiceInfo.FOREGROUND_SERVICE_TYPE_DATA_SYNC)
        assertTrue("stopped itself", shadow.isStoppedBySelf)
        assertTrue("left the foreground", shadow.isForegroundStopped)
        // Off screen with no run left, the engine stops sending; a regular job takes over.
        eventually("the engine to stop") {
            runBlocking { engine.lifecycleStatus() }.takeIf { it.runs.isEmpty() && it.mode == "stopped" }
        }
        assertEquals(1u, runBlocking { engine.status() }.active)
        val job = eventually("a regular job") { app.getSystemService(android.app.job.JobScheduler::class.java)!!.getPendingJob(UploadJobs.JOB_ID) }
        assertFalse(job.userInitiated)
        assertTrue(job.isPersisted)
        controller.destroy()
    }

    @Test
    fun theForegroundServiceIsUsedOnlyWhenTheAppDeclaredIt() {
        assertFalse(UploadJobs.foregroundServiceDeclared(app))
        val info = ServiceInfo().apply {
            packageName = app.packageName
            name = UploadForegroundService::class.java.name
        }.withForegroundType(ServiceInfo.FOREGROUND_SERVICE_TYPE_DATA_SYNC)
        shadowOf(app.packageManager).addOrUpdateService(info)
        // FOREGROUND_SERVICE is a permission from API 28: below, the declaration is enough.
        assertEquals("declared without its permissions", Build.VERSION.SDK_INT < 28, UploadJobs.foregroundServiceDeclared(app))
        shadowOf(app).grantPermissions("android.permission.FOREGROUND_SERVICE", "android.permission.FOREGROUND_SERVICE_DATA_SYNC")
        assertTrue(UploadJobs.foregroundServiceDeclared(app))
    }

    @Test
    fun afterABootTheReceiverSchedulesTheJobWithoutJavaScript(): Unit = GatedBackend().use { gated ->
        val engine = engineOf(app)
        // Held at the backend: work is left whatever the network says.
        runBlocking { engine.setConfigJson(gated.configJson()) }
        runBlocking { engine.uploadFileJson(randomFile(app.cacheDir, "boot.bin", 3000).path, "boot", null, "{}") }
        // A new process: the engine is reopened from the persisted queue.
        S3BgUploaderRuntime.resetForTests()
        // Delivered as a broadcast (Robolectric does not read the library's
        // manifest: the receiver is registered here as the manifest does).
        app.registerReceiver(BootReceiver(), IntentFilter(Intent.ACTION_BOOT_COMPLETED))
        app.sendBroadcast(Intent(Intent.ACTION_BOOT_COMPLETED))
        shadowOf(android.os.Looper.getMainLooper()).idle()
        val scheduler = app.getSystemService(android.app.job.JobScheduler::class.java)!!
        val job = eventually("the job after boot") { scheduler.getPendingJob(UploadJobs.JOB_ID) }
        assertTrue(job.isPersisted)
        assertFalse(job.userInitiated)
        assertUploadEstimate(3000L, job)
    }
}
